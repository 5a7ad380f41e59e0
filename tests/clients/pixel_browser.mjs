// RudderStack's pixel routes with real <img> tags: a newsletter page on another
// loopback origin shows a tracking pixel, a page-view pixel and one with an unknown
// key. Usage: node pixel_browser.mjs INTAKE_URL WRITE_KEY
// Prints {pixels: {origin, images: [{src, complete, width, height}], requests: [...]}}.
import { allSettled, openPage, runScenarios, startSite, summarise, withBrowser } from './browser_harness.mjs'

const [intake, writeKey] = process.argv.slice(2)
const tag = `pixel-${process.pid}`
const pixels = [
  `/pixel/v1/track?writeKey=${writeKey}&anonymousId=%22${tag}-anon%22&event=Email%20Opened&messageId=${tag}-track&properties.campaign=spring&context.campaign.medium=email`,
  `/pixel/v1/page?writeKey=${writeKey}&anonymousId=${tag}-anon&name=Newsletter&messageId=${tag}-page&properties.path=%2Fnews`,
  `/pixel/v1/track?writeKey=UnknownKeyUnknownKeyUnknownKey00&anonymousId=a&event=x&messageId=${tag}-unknown`
]
const escape = (text) => text.replaceAll('&', '&amp;').replaceAll('"', '&quot;')
const site = await startSite({
  markup: { '/newsletter': pixels.map((p) => `<img alt="" src="${escape(intake + p)}">`).join('') }
})

await withBrowser((browser) => runScenarios({
  pixels: async () => {
    const shop = await openPage(browser, `${site.origin}/newsletter`)
    // page.goto waits for the load event: every image has loaded or failed.
    const images = await shop.page.evaluate(() => [...document.images].map((img) =>
      ({ src: img.src, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight })))
    await allSettled(shop.network, intake)
    await shop.context.close()
    return { origin: site.origin, tag, images, requests: summarise(shop.network.requests()), consoleErrors: shop.consoleErrors }
  }
}))
site.close()
