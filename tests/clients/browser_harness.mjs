// Shared by the browser SDK scripts: a shop site on its own loopback origin that
// serves pages and the SDK bundles from node_modules, headless Chromium (Debian's)
// that can reach nothing but loopback, and a recorder of the browser's own network
// log read over CDP (`Network.*` events). No request interception is used: it would
// answer CORS preflights itself and hide exactly what the tests look for.
import fs from 'node:fs'
import http from 'node:http'
import { chromium } from 'playwright-core'

// Every host name resolves to nothing except the two loopback names the tests use.
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-features=OptimizationHints,MediaRouter,Translate',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1']

// The site: `scripts` maps a page path to the script URLs it loads, `markup` to more
// of its HTML, `files` maps a URL to a file; any other path is a plain page
// (somewhere to navigate to).
export async function startSite ({ scripts = {}, markup = {}, files = {} }) {
  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0]
    if (files[path]) {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      return fs.createReadStream(files[path]).pipe(res)
    }
    const tags = (scripts[path] ?? []).map((src) => `<script src="${src}"></script>`).join('')
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><title>shop</title>${tags}<p>shop</p>${markup[path] ?? ''}`)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  // localhost and 127.0.0.1 are different origins: the page is cross-origin to intake.
  return { origin: `http://localhost:${server.address().port}`, close: () => server.close() }
}

export async function withBrowser (run) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: LAUNCH_ARGS })
  try {
    return await run(browser)
  } finally {
    await browser.close()
  }
}

// A fresh context (its own storage) and page, with its network recorded from the
// start. `framed`: the shop page runs in an iframe of a page of the same origin, so
// that it can be unloaded (pagehide) while the recorder still sees the requests it
// sends as it goes (Chromium reports none for a top-level document it has left).
// `frame` is where the shop page's scripts run; `leave()` navigates it away.
export async function openPage (browser, url, { framed = false } = {}) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const consoleErrors = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  page.on('pageerror', (e) => consoleErrors.push(String(e)))
  const network = await recordNetwork(page)
  const elsewhere = new URL('/elsewhere', url).href
  if (!framed) {
    await page.goto(url)
    return { context, page, frame: page.mainFrame(), network, consoleErrors, leave: () => page.goto(elsewhere) }
  }
  await page.goto(new URL('/frame-host', url).href)
  await page.evaluate((src) => new Promise((resolve) => {
    const frame = document.createElement('iframe')
    frame.src = src
    frame.onload = resolve
    document.body.appendChild(frame)
  }), url)
  const leave = () => page.evaluate((src) => new Promise((resolve) => {
    const frame = document.querySelector('iframe')
    frame.onload = resolve
    frame.src = src
  }), elsewhere)
  return { context, page, frame: page.frames()[1], network, consoleErrors, leave }
}

async function recordNetwork (page) {
  const cdp = await page.context().newCDPSession(page)
  const requests = new Map()
  const entry = (id) => {
    if (!requests.has(id)) requests.set(id, { id })
    return requests.get(id)
  }
  cdp.on('Network.requestWillBeSent', (e) => {
    const request = Object.assign(entry(e.requestId), {
      url: e.request.url,
      method: e.request.method,
      type: e.type,
      postData: e.request.postData ?? null
    })
    // Bodies the event leaves out (a beacon's Blob) are asked for separately.
    if (e.request.hasPostData && request.postData === null) {
      request.bodyPending = true
      cdp.send('Network.getRequestPostData', { requestId: e.requestId })
        .then((r) => { request.postData = r.postData }, () => {})
        .finally(() => { request.bodyPending = false })
    }
  })
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => { entry(e.requestId).headers = e.headers })
  cdp.on('Network.responseReceived', (e) => {
    Object.assign(entry(e.requestId), { status: e.response.status, type: e.type })
  })
  cdp.on('Network.loadingFinished', (e) => { entry(e.requestId).done = true })
  cdp.on('Network.loadingFailed', (e) => {
    Object.assign(entry(e.requestId), { done: true, failed: e.errorText, corsError: e.corsErrorStatus?.corsError ?? null })
  })
  await cdp.send('Network.enable')
  return {
    cdp,
    requests: () => [...requests.values()].filter((r) => r.url),
    setOffline: (offline) => cdp.send('Network.emulateNetworkConditions',
      { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })
  }
}

// Polls `check` until it returns something truthy; fails after `ms` (generous: CI
// machines are slow and shared).
export async function until (what, check, ms = 60000) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

// The messageIds in a request body (one event, or a batch).
export function bodyMessageIds (postData) {
  if (!postData) return []
  try {
    const body = JSON.parse(postData)
    return (Array.isArray(body.batch) ? body.batch : [body]).map((e) => e.messageId).filter(Boolean)
  } catch {
    return []
  }
}

// What a test asserts on: every request the page made, with what matters of it.
export function summarise (requests) {
  return requests.map((r) => ({
    url: r.url,
    method: r.method,
    type: r.type ?? null,
    status: r.status ?? null,
    done: Boolean(r.done),
    failed: r.failed ?? null,
    corsError: r.corsError ?? null,
    requestedHeaders: r.headers?.['Access-Control-Request-Headers'] ?? null,
    messageIds: bodyMessageIds(r.postData)
  }))
}

// Answered or failed, and its body (when asked for separately) read.
const settled = (request) => request.done && !request.bodyPending

// Waits until every request to `prefix` has finished (answered or failed).
export function allSettled (network, prefix) {
  return until(`every request to ${prefix} to finish`, () =>
    network.requests().filter((r) => r.url.startsWith(prefix)).every(settled))
}

// Waits for `count` answered POSTs to `url` (a prefix).
export const answered = (network, url, count = 1) => until(`${count} answered POST(s) to ${url}`, () =>
  network.requests().filter((r) => r.method === 'POST' && r.url.startsWith(url) && r.status).length >= count)

// Waits for a POST with a body to `url`, sent as the page unloads (the browser
// reports it leaving, then aborted for the page, with no answer any more), and for its
// preflight's answer.
export const sent = (network, url) => until(`a POST to ${url} with events, and its preflight answered`, () => {
  const requests = network.requests().filter((r) => r.url.startsWith(url))
  return requests.some((r) => r.method === 'POST' && r.postData) && requests.every(settled)
})

// Scenario hooks. `afterAnswered`: done once a POST to each URL is answered.
export const afterAnswered = (urls) => ({
  after: async ({ network }) => { for (const url of urls) await answered(network, url) }
})

// Offline while the events are made, back online after: they go out on a retry.
export const offlineFirst = (urls) => ({
  before: ({ network }) => network.setOffline(true),
  after: async (shop) => {
    await shop.network.setOffline(false)
    await afterAnswered(urls).after(shop)
  }
})

// The page is left once the events are made: they go out as it unloads, to `url`.
export const unloaded = (url) => ({
  framed: true,
  after: async ({ network, leave }) => {
    await leave()
    await sent(network, url)
  }
})

// One SDK scenario: open the shop page at `url` (framed when it is to be unloaded),
// `load` the SDK in it (with `loadArgs`), run `before`, send every event type
// (`sendAll`, given `tag`), run `after`; then, unless framed, let every request to
// `intake` finish. Returns what the SDK reported and the network log.
export async function sdkScenario (browser, { url, intake, load, loadArgs, sendAll, tag, framed = false, before, after }) {
  const shop = await openPage(browser, url, { framed })
  await shop.frame.evaluate(load, loadArgs)
  if (before) await before(shop)
  const sdk = await shop.frame.evaluate(sendAll, tag)
  await after(shop)
  if (!framed) {
    await allSettled(shop.network, intake)
    await shop.context.close()
  }
  return { origin: new URL(url).origin, sdk, requests: summarise(shop.network.requests()), consoleErrors: shop.consoleErrors }
}

// Runs each scenario in turn and prints the report as one JSON line; then keeps the
// browser open until stdin closes, so that requests a page sent as it unloaded
// (keepalive fetches, beacons) are not cut short while the test checks the sink.
export async function runScenarios (scenarios) {
  const report = {}
  for (const [name, scenario] of Object.entries(scenarios)) {
    try {
      report[name] = await scenario()
    } catch (error) {
      report[name] = { error: String(error?.stack ?? error) }
    }
  }
  console.log(JSON.stringify(report))
  await new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('error', resolve)
    process.stdin.resume()
  })
}
