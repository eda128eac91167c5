/**
 * The walkthrough's retain example: the broker keeps 'retain message' on 'test' and hands it to
 * every new subscriber at once (and to existing ones when it is published).
 *
 *   node dist/examples/retain.js [port]
 */
import { connect } from '../src/client/index.js';
import { brokerUrl } from './_port.js';

const client04 = await connect(brokerUrl(), { clientId: 'client04' });
// a QoS 0 publish resolves to undefined (no packet id); paho's mid is the client's message counter, which
// the 'packetsend' event reports
let mid: number | undefined;
client04.once('packetsend', (_packet, m) => { mid = m; });
await client04.publish('test', 'retain message', { retain: true });
console.log('rc:', 0);
console.log('mid:', mid);
await client04.end();
