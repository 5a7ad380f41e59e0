// A real browser: headless Chromium (Debian's) loads a page from another origin that
// sends events to intake with fetch (JSON with Basic auth, so preflighted; and
// text/plain with writeKey in the body) and with navigator.sendBeacon.
// Usage: node browser.mjs INTAKE_URL WRITE_KEY
// Prints {"origin": ..., "fetchStatuses": [...], "beaconQueued": bool, "messageIds": [...]}.
import http from 'node:http'
import { chromium } from 'playwright-core'

const [intake, writeKey] = process.argv.slice(2)
const server = http.createServer((_, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end('<!doctype html><title>shop</title><p>shop</p>')
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const origin = `http://localhost:${server.address().port}`

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
try {
  const page = await browser.newPage()
  await page.goto(origin)
  const tag = `browser-${process.pid}`
  // The beacon is fire-and-forget: wait (bounded) for its answer before closing.
  const beaconAnswered = page
    .waitForResponse((r) => r.url().endsWith('/v1/batch'), { timeout: 10000 })
    .then((r) => r.status(), () => null)
  const result = await page.evaluate(async ({ intake, writeKey, tag }) => {
    const statuses = []
    const json = await fetch(`${intake}/v1/track`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Basic ' + btoa(writeKey + ':') },
      body: JSON.stringify({ userId: 'u-b', event: 'Fetch JSON', messageId: `${tag}-json` }),
    })
    statuses.push(json.status, (await json.json()).success)
    const plain = await fetch(`${intake}/v1/track`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ userId: 'u-b', event: 'Fetch text', messageId: `${tag}-text`, writeKey }),
    })
    statuses.push(plain.status)
    const beacon = navigator.sendBeacon(`${intake}/v1/batch`, new Blob([JSON.stringify({
      writeKey, batch: [{ type: 'page', anonymousId: 'a-b', name: 'Beacon', messageId: `${tag}-beacon` }],
    })], { type: 'text/plain' }))
    return { statuses, beacon, origin: location.origin }
  }, { intake, writeKey, tag })
  const beaconStatus = await beaconAnswered
  console.log(JSON.stringify({
    origin: result.origin,
    fetchStatuses: result.statuses,
    beaconQueued: result.beacon,
    beaconStatus,
    messageIds: [`${tag}-json`, `${tag}-text`, `${tag}-beacon`],
  }))
} finally {
  await browser.close()
  server.close()
}
