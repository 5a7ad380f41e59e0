// RudderStack's JS SDK (@rudderstack/analytics-js v3, pinned in package.json; its
// "bundled" UMD build, so no plugin is fetched from a CDN), loaded unmodified by a shop
// page on another loopback origin, its source config fetched from intake
// (`configUrl`), sends every event type through each of its transports: XHR (one
// request an event, preflighted for its AnonymousId/SentAt headers), XHR batching
// (`/v1/batch`), the beacon queue (`/beacon/v1/batch?writeKey=`), the beacon flush on
// page leave (with the auto-tracked "Page Unloaded" event), and an XHR retry
// (`Rsa-Retry-*` headers) after the browser was offline.
// Usage: node rudderstack_browser.mjs INTAKE_URL WRITE_KEY
// Prints {scenario: {origin, sdk: [{messageId, type}], requests: [...]}, ...}.
import { afterAnswered, offlineFirst, runScenarios, sdkScenario, startSite, unloaded, withBrowser } from './browser_harness.mjs'

const [intake, writeKey] = process.argv.slice(2)
const site = await startSite({
  scripts: { '/shop': ['/sdk/rudderstack.js'] },
  files: { '/sdk/rudderstack.js': 'node_modules/@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js' }
})

// In the page: load the SDK as a site would (data plane and config URL: intake).
const load = ({ intake, writeKey, options }) => new Promise((resolve) => {
  const analytics = new window.rudderanalytics.RudderAnalytics()
  window.shopAnalytics = analytics
  analytics.load(writeKey, intake, { configUrl: intake, logLevel: 'ERROR', ...options })
  analytics.ready(resolve)
})

// In the page: one event of each type the SDK has; their messageIds as it queues them.
const sendAll = (tag) => new Promise((resolve) => {
  const analytics = window.shopAnalytics
  const events = []
  const queued = (event) => {
    events.push({ messageId: event.messageId, type: event.type })
    if (events.length === 5) resolve(events)
  }
  analytics.page('Shop', 'Home', { tag }, {}, queued)
  analytics.track('Order Completed', { total: 42 }, {}, queued)
  analytics.identify('user-1', { plan: 'pro' }, {}, queued)
  analytics.group('group-1', { name: 'Acme' }, {}, queued)
  analytics.alias('user-2', 'user-1', {}, queued)
})

const EVERY_PATH = ['/v1/page', '/v1/track', '/v1/identify', '/v1/group', '/v1/alias']
const beacon = (maxItems) => ({ useBeacon: true, beaconQueueOptions: { maxItems, flushQueueInterval: 600000 } })

const scenario = (browser, options, hooks) => sdkScenario(browser, {
  url: `${site.origin}/shop`, intake, load, loadArgs: { intake, writeKey, options }, sendAll, tag: `rudderstack-${process.pid}`, ...hooks
})

const paths = (list) => list.map((path) => `${intake}${path}`)
const batch = { queueOptions: { batch: { enabled: true, maxItems: 5, flushInterval: 60000 } } }
const pageLifecycle = { autoTrack: { pageLifecycle: { enabled: true } } }

await withBrowser((browser) => runScenarios({
  xhr: () => scenario(browser, {}, afterAnswered(paths(EVERY_PATH))),
  batching: () => scenario(browser, batch, afterAnswered(paths(['/v1/batch']))),
  beacon: () => scenario(browser, beacon(5), afterAnswered(paths(['/beacon/v1/batch']))),
  // Ten minutes' batching: only the flush on page leave sends them, with the
  // auto-tracked "Page Unloaded" event.
  unload: () => scenario(browser, { ...beacon(100), ...pageLifecycle }, unloaded(`${intake}/beacon/v1/batch`)),
  // Offline first: the events go out on a retry, with the Rsa-Retry-* headers.
  retry: () => scenario(browser, {}, offlineFirst(paths(EVERY_PATH)))
}))
site.close()
