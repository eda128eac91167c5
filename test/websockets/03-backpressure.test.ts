/**
 * Backpressure through a WebSocket: a WebSocket subscriber that stops reading (its TCP socket paused)
 * while a TCP publisher sends 48 MiB is treated as a socket whose write returned false: the broker stops
 * writing to it at its socket buffer limit and drops QoS 0 beyond its bounded queue (max_queued_bytes)
 * instead of buffering everything, a TCP bystander gets every message in order, and the slow client, once it reads again,
 * gets what was kept and then new messages.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Parser } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/types.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { closeAllClients, connect as mqttjs } from '../helpers/mqttjs.js';
import { connectPacket, openWs, startWsBroker, subscribePacket, type WsBroker } from './_ws.js';

const MESSAGES = 3000;
const SIZE = 16 * 1024;

/** Polls every 10 ms, bounded. */
async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  while (!cond()) {
    if (Math.round(performance.now()) > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let b: WsBroker;
before(async () => { b = await startWsBroker([[]], ['max_queued_bytes 2097152'], false); });
after(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
});

test(`a WebSocket subscriber that stops reading during ${MESSAGES} x ${SIZE / 1024} KiB QoS 0 messages gets a bounded part, a TCP bystander all of them`, { timeout: 60_000 }, async () => {
  const slow = await openWs(b.wsPorts[0]!);
  const parser = new Parser({ protocolVersion: 4 });
  const got: Packet[] = [];
  slow.ws.on('message', (d: Buffer) => parser.parse(d, (p) => got.push(p)));
  slow.ws.send(Buffer.concat([connectPacket('slow-ws'), subscribePacket('flood', 0)]));
  await until('SUBACK', () => got.some((p) => p.type === 'suback'), 3000);
  slow.ws.pause(); // stops reading its TCP socket: the broker's writes back up

  const bystander = await mqttjs(b.port, { clientId: 'bystander' });
  await bystander.subscribeAsync('flood', { qos: 1 });
  const bySeq: number[] = [];
  bystander.on('message', (_t, p, packet) => { if (packet.qos === 1) bySeq.push(p.readUInt32BE(0)); });
  const publisher = await mqttjs(b.port, { clientId: 'flooder' });
  const payload = Buffer.alloc(SIZE, 0x61);
  // batches of 50, each once the bystander has the last: the bystander never falls behind, the stalled
  // WebSocket client is sent everything
  for (let i = 0; i < MESSAGES; i += 50) {
    const batch: Array<Promise<unknown>> = [];
    for (let j = i; j < i + 50 && j < MESSAGES; j++) {
      payload.writeUInt32BE(j, 0);
      batch.push(publisher.publishAsync('flood', Buffer.from(payload), { qos: 1 }));
    }
    await Promise.all(batch);
    await until(`the bystander to get message ${Math.min(i + 50, MESSAGES)}`, () => bySeq.length >= Math.min(i + 50, MESSAGES), 10_000);
  }
  assert.deepEqual(bySeq, Array.from({ length: MESSAGES }, (_, i) => i), 'the bystander got every message, in order');
  // the broker dropped what did not fit (its bounded queue) rather than buffering it for the WebSocket
  await b.broker.waitForLog(/Outgoing messages are being dropped for client slow-ws\./);

  // reading again: what the broker kept arrives, less than everything, and the connection works on
  slow.ws.resume();
  let last = -1;
  for (let quiet = 0, i = 0; quiet < 5 && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    quiet = got.length === last ? quiet + 1 : 0;
    last = got.length;
  }
  const kept = got.filter((p) => p.type === 'publish').length;
  assert.ok(kept > 0 && kept < MESSAGES / 2, `the slow client got ${kept} of ${MESSAGES}: the broker kept a bounded part (its socket buffer limit, its queue, the kernel's buffers)`);
  await publisher.publishAsync('flood', 'after', { qos: 1 });
  await until('the message after the flood', () => got.some((p) => p.type === 'publish' && Buffer.from(p.payload).toString() === 'after'), 5000);
  assert.ok(!slow.closed, 'the slow client is still connected');
});
