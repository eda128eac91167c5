/**
 * QoS 2 across a broken remote connection: the remote (a minimal MQTT 3.1.1 server written with Midge's
 * codec, which keeps the session) answers PUBREC to a message, then drops the connection when PUBREL comes,
 * without PUBCOMP. On the next connection the bridge sends PUBREL for that packet id again, and not the
 * PUBLISH: exactly once (a new PUBLISH under a new id would be a second copy).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { Parser, encode } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { logLines, publish, until } from './_helpers.js';

const sockets = new Set<Socket>();
/** every packet the remote received: [connection number, packet] */
const seen: Array<[number, Packet]> = [];
let connections = 0;
let firstId: number | undefined;
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => undefined);
  const n = ++connections;
  const parser = new Parser({ firstPacketConnect: true });
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.parse(chunk, (p) => {
        seen.push([n, p]);
        const send = (q: Packet): void => { socket.write(encode(q, 4)); };
        switch (p.type) {
          case 'connect': send({ type: 'connack', sessionPresent: n > 1, reasonCode: 0 }); break;
          case 'subscribe': send({ type: 'suback', packetId: p.packetId, reasonCodes: p.subscriptions.map((s) => s.qos) }); break;
          case 'unsubscribe': send({ type: 'unsuback', packetId: p.packetId }); break;
          case 'pingreq': send({ type: 'pingresp' }); break;
          case 'pubrel':
            if (n === 1 && p.packetId === firstId) { socket.destroy(); break; } // gone before PUBCOMP
            send({ type: 'pubcomp', packetId: p.packetId });
            break;
          case 'publish':
            if (p.qos === 1) send({ type: 'puback', packetId: p.packetId! });
            if (p.qos === 2) {
              if (p.topic === 'q/1' && n === 1) firstId = p.packetId;
              send({ type: 'pubrec', packetId: p.packetId! });
            }
            break;
          default: break;
        }
      });
    } catch {
      socket.destroy();
    }
  });
});

after(async () => {
  await stopAllBrokers();
  await killAll();
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

test('QoS 2: the remote connection drops after PUBREL, before PUBCOMP; the next connection sends PUBREL again, no second PUBLISH', { timeout: 30_000 }, async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const local = await startMidge({ verbose: true, config: ['connection q2', `address 127.0.0.1:${port}`, 'restart_timeout 1', 'topic q/# out 2'].join('\n') });
  await until('connected', 10_000, () => logLines(local, /Bridge q2 connected to/).length === 1);
  await publish(local, 'q/1', 'first', 2);
  await until('reconnected', 10_000, () => logLines(local, /Bridge q2 connected to/).length === 2);
  await publish(local, 'q/2', 'second', 2);
  await until('q/2 completed', 5000, () => seen.some(([n, p]) => n === 2 && p.type === 'pubrel'
    && seen.some(([m, q]) => m === 2 && q.type === 'publish' && q.topic === 'q/2' && q.packetId === p.packetId)));
  const publishes = seen.filter(([, p]) => p.type === 'publish' && p.topic.startsWith('q/')).map(([n, p]) => [n, (p as { topic: string }).topic]);
  assert.deepEqual(publishes, [[1, 'q/1'], [2, 'q/2']], 'q/1 was published once');
  const first = seen.find(([, p]) => p.type === 'publish' && p.topic === 'q/1')![1] as { packetId: number };
  assert.ok(seen.some(([n, p]) => n === 1 && p.type === 'pubrel' && p.packetId === first.packetId), 'PUBREL on the first connection');
  assert.ok(seen.some(([n, p]) => n === 2 && p.type === 'pubrel' && p.packetId === first.packetId), 'PUBREL again on the next connection');
  assert.ok(logLines(local, /Bridge q2 restarting in 1 s/).length >= 1);
});
