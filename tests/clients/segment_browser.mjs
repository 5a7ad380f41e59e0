// analytics.js (@segment/analytics-next, pinned in package.json), loaded unmodified
// from its npm bundle by a shop page on another loopback origin, its settings fetched
// from intake (`cdnURL`), sends every event type through each of its transports: fetch
// (one request an event, preflighted), batching (`/v1/b`), the keepalive flush on
// pagehide, and a retry (`X-Retry-Count`) after the browser was offline.
// Usage: node segment_browser.mjs INTAKE_URL WRITE_KEY
// Prints {scenario: {origin, sdk: [{messageId, type}], requests: [...]}, ...}.
import { afterAnswered, offlineFirst, runScenarios, sdkScenario, startSite, unloaded, withBrowser } from './browser_harness.mjs'

const [intake, writeKey] = process.argv.slice(2)
const site = await startSite({
  scripts: { '/shop': ['/sdk/analytics-next.js'] },
  files: { '/sdk/analytics-next.js': 'node_modules/@segment/analytics-next/dist/umd/index.js' }
})

const batching = (size, timeout) =>
  ({ integrations: { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size, timeout } } } } })

// In the page: load analytics.js as a site would, settings from intake.
const load = ({ intake, writeKey, options }) =>
  window.AnalyticsNext.AnalyticsBrowser.load({ writeKey, cdnURL: intake }, options)
    .then(([analytics]) => { window.analytics = analytics })

// In the page: one event of each type; their messageIds once the SDK has handled them.
const sendAll = (tag) => Promise.all([
  window.analytics.track('Order Completed', { total: 42, tag }),
  window.analytics.identify('user-1', { plan: 'pro' }),
  window.analytics.page('Shop', 'Home'),
  window.analytics.screen('Cart'),
  window.analytics.group('group-1', { name: 'Acme' }),
  window.analytics.alias('user-1', 'anon-0')
]).then((contexts) => contexts.map((c) => ({ messageId: c.event.messageId, type: c.event.type })))

const EVERY_PATH = ['/v1/t', '/v1/i', '/v1/p', '/v1/s', '/v1/g', '/v1/a']

const scenario = (browser, options, hooks) => sdkScenario(browser, {
  url: `${site.origin}/shop`, intake, load, loadArgs: { intake, writeKey, options }, sendAll, tag: `segment-${process.pid}`, ...hooks
})

const paths = (list) => list.map((path) => `${intake}${path}`)

await withBrowser((browser) => runScenarios({
  fetch: () => scenario(browser, {}, afterAnswered(paths(EVERY_PATH))),
  batching: () => scenario(browser, batching(6, 60000), afterAnswered(paths(['/v1/b']))),
  // Ten minutes' batching: only the pagehide flush (a keepalive fetch) sends them.
  pagehide: () => scenario(browser, batching(100, 600000), unloaded(`${intake}/v1/b`)),
  // Offline first: the events go out on a retry, with X-Retry-Count (preflighted).
  retry: () => scenario(browser, {}, offlineFirst(paths(EVERY_PATH)))
}))
site.close()
