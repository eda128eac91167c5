/**
 * The walkthrough's will examples. The client sets a will ('will message' on 'test'), publishes 'abc', then:
 *   disconnect  (default) ends with DISCONNECT: the broker drops the will;
 *   exit        the process ends without DISCONNECT: the broker publishes the will at once;
 *   loop        stays connected, answering keepalive (PINGREQ/PINGRESP): no will, however long it idles.
 *
 *   node dist/examples/will.js [port] [disconnect|exit|loop]      (MQTT_KEEPALIVE: seconds, default 60)
 */
import { connect } from '../src/client/index.js';
import { brokerUrl } from './_port.js';

const mode = process.argv[3] ?? 'disconnect';
const client04 = await connect(brokerUrl(), {
  clientId: 'client04',
  keepalive: Number(process.env.MQTT_KEEPALIVE ?? 60),
  will: { topic: 'test', payload: 'will message' },
});
// a QoS 0 publish resolves to undefined (no packet id); paho's mid is the client's message counter, which
// the 'packetsend' event reports
let mid: number | undefined;
client04.once('packetsend', (_packet, m) => { mid = m; });
await client04.publish('test', 'abc');
console.log('rc:', 0);
console.log('mid:', mid);

if (mode === 'disconnect') {
  await client04.end();
} else if (mode === 'exit') {
  process.exit(0); // no DISCONNECT: the socket just closes
} else {
  const stop = (): void => { void client04.end(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
