/**
 * try_private against a broker that does not know the bridge bit: a CONNECT with protocol level 0x84 is
 * refused (CONNACK 1, unacceptable protocol version, as such brokers answer); the bridge tries again without
 * the bit, as mosquitto does. The remote here is a minimal MQTT 3.1.1 server written with Midge's codec.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { Parser, encode } from '../../src/codec/index.js';
import type { ConnectPacket } from '../../src/codec/types.js';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { logLines, until } from './_helpers.js';

const sockets = new Set<Socket>();
const connects: ConnectPacket[] = [];
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => undefined);
  const parser = new Parser({ firstPacketConnect: true });
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.parse(chunk, (p) => {
        if (p.type === 'connect') {
          connects.push(p);
          if (p.bridge === true) {
            socket.end(encode({ type: 'connack', sessionPresent: false, reasonCode: 1 }, 4));
            return;
          }
          socket.write(encode({ type: 'connack', sessionPresent: false, reasonCode: 0 }, 4));
        } else if (p.type === 'subscribe') {
          socket.write(encode({ type: 'suback', packetId: p.packetId, reasonCodes: p.subscriptions.map((s) => s.qos) }, 4));
        } else if (p.type === 'unsubscribe') {
          socket.write(encode({ type: 'unsuback', packetId: p.packetId }, 4));
        } else if (p.type === 'publish' && p.qos === 1) {
          socket.write(encode({ type: 'puback', packetId: p.packetId! }, 4));
        } else if (p.type === 'pingreq') {
          socket.write(encode({ type: 'pingresp' }, 4));
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

test('try_private true against a broker that refuses protocol level 0x84 (CONNACK 1): retried without the bridge bit, then connected', { timeout: 30_000 }, async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const local = await startMidge({ verbose: true, config: ['connection tp', `address 127.0.0.1:${port}`, 'restart_timeout 1', 'topic t/# both 1'].join('\n') });
  await until('connected', 10_000, () => logLines(local, /Bridge tp connected to/).length === 1);
  assert.equal(connects.length, 2, 'one refused attempt, one accepted');
  assert.equal(connects[0]!.bridge, true, 'the first CONNECT has the bridge bit');
  assert.equal(connects[0]!.protocolVersion, 4);
  assert.notEqual(connects[1]!.bridge, true, 'the second does not');
  assert.equal(logLines(local, /Error creating bridge: /).length, 1);
});
