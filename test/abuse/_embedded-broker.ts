/**
 * An embedded broker with hooks, run as a child process by the abuse tier (so that its memory and
 * liveness can be read from /proc like the `midge broker` process's):
 *   node dist/test/abuse/_embedded-broker.js '<JSON of extra BrokerOptions>'
 * Hooks: `authenticate` never settles for the username 'hang' (accepts everyone else); the MQTT 5
 * authentication method 'ENDLESS' answers every step with another challenge (AUTH 0x18), so it only
 * ends when the client gives up or the broker's pre-CONNACK deadline closes it.
 * Prints `listening PORT` once it listens on 127.0.0.1 (an ephemeral port); SIGTERM closes it.
 */
import { createBroker, type BrokerOptions } from '../../src/index.js';

const extra = JSON.parse(process.argv[2] ?? '{}') as Partial<BrokerOptions>;
const broker = createBroker({
  listeners: [{ port: 0, host: '127.0.0.1' }],
  sysInterval: 0,
  hooks: {
    authenticate: (_client, username) => (username === 'hang' ? new Promise<boolean>(() => undefined) : true),
    authMethods: {
      ENDLESS: () => ({ step: () => ({ continue: Buffer.from('again') }) }),
    },
  },
  ...extra,
});
const [address] = await broker.listen();
process.stdout.write(`listening ${address!.port}\n`);
process.on('SIGTERM', () => {
  void broker.close().then(() => process.exit(0));
});
