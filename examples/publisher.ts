/**
 * The walkthrough's publisher (paho's client04): publishes 'abc' to 'test' at QoS 1,
 * prints the result code and the message id, and disconnects.
 *
 *   node dist/examples/publisher.js [port]
 */
import { connect } from '../src/client/index.js';
import { brokerUrl } from './_port.js';

const client04 = await connect(brokerUrl(), { clientId: 'client04' });
const mid = await client04.publish('test', 'abc', { qos: 1 }); // resolves once the broker acknowledged it
console.log('rc:', 0);
console.log('mid:', mid);
await client04.end();
