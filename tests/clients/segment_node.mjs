// Segment's Node SDK (unmodified), pointed at intake, with its own batching and
// retries. Usage: node segment_node.mjs HOST WRITE_KEY
// Prints {"messageIds": [...], "errors": [...]} and exits non-zero on any error.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 4, maxRetries: 2 })
const errors = []
analytics.on('error', (error) => errors.push(String(error?.reason ?? error?.message ?? error)))
const ids = []
const id = (n) => { const value = `node-${process.pid}-${n}`; ids.push(value); return value }
for (let n = 0; n < 3; n++) {
  analytics.track({ userId: 'user-2', event: 'Node Event', properties: { n }, messageId: id(`t${n}`) })
}
analytics.identify({ userId: 'user-2', traits: { name: 'Grace' }, messageId: id('i') })
analytics.page({ userId: 'user-2', name: 'Home', properties: { path: '/' }, messageId: id('p') })
analytics.screen({ userId: 'user-2', name: 'Main', messageId: id('s') })
analytics.group({ userId: 'user-2', groupId: 'g-1', traits: { size: 5 }, messageId: id('g') })
analytics.alias({ userId: 'user-2', previousId: 'anon-2', messageId: id('a') })
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ messageIds: ids, errors }))
if (errors.length > 0) process.exit(1)
