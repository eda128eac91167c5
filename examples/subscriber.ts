/**
 * The walkthrough's durable subscriber (paho's client03 with clean_session=False):
 * subscribes to 'test' at QoS 1 and prints every message; messages published while it was
 * away arrive when it comes back. Stop it with Ctrl-C.
 *
 *   node dist/examples/subscriber.js [port]
 */
import { connect } from '../src/client/index.js';
import { brokerUrl } from './_port.js';

const client03 = await connect(brokerUrl(), { clientId: 'client03', clean: false });
client03.on('message', (message) => {
  console.log('topic:', message.topic);
  console.log('payload:', message.payload.toString());
  console.log('qos:', message.qos);
});
await client03.subscribe('test', { qos: 1 });

const stop = (): void => { void client03.end(); };
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
