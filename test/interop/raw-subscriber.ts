/**
 * A hand-written MQTT 3.1.1 subscriber over a raw TCP socket that never acknowledges what it receives
 * (MQTT.js only honours customHandleAcks for MQTT 5). Just enough bytes for the redelivery test.
 */
import { connect, type Socket } from 'node:net';
import { Waiters } from '../helpers/proc.js';

export interface RawPublish {
  topic: string;
  payload: string;
  qos: number;
  dup: boolean;
  retain: boolean;
  messageId: number | undefined;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(firstByte: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    len.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([firstByte, ...len]), body]);
}

/** CONNECT (clean session 0, keepalive 60) and SUBSCRIBE; resolves after SUBACK granted `qos`. */
export async function rawSubscriber(port: number, clientId: string, filter: string, qos: number) {
  const socket: Socket = connect({ host: '127.0.0.1', port });
  const publishes: RawPublish[] = [];
  const others: { type: number; body: Buffer }[] = [];
  const waiters = new Waiters();
  let buf = Buffer.alloc(0);
  let closed = false;
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    waiters.check();
  });
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < buf.length && i <= 4; i++) {
        len += (buf[i]! & 0x7f) * mul;
        mul *= 128;
        if ((buf[i]! & 0x80) === 0) break;
      }
      if (i >= buf.length || buf.length < i + 1 + len) break;
      const first = buf[0]!;
      const body = buf.subarray(i + 1, i + 1 + len);
      buf = buf.subarray(i + 1 + len);
      const type = first >> 4;
      if (type === 3) {
        const q = (first >> 1) & 3;
        const tlen = body.readUInt16BE(0);
        const topic = body.subarray(2, 2 + tlen).toString('utf8');
        const messageId = q > 0 ? body.readUInt16BE(2 + tlen) : undefined;
        const payload = body.subarray(2 + tlen + (q > 0 ? 2 : 0)).toString('utf8');
        publishes.push({ topic, payload, qos: q, dup: (first & 8) !== 0, retain: (first & 1) !== 0, messageId });
      } else {
        others.push({ type, body });
      }
      waiters.check();
    }
  });
  const describe = (): string =>
    `other packets: ${JSON.stringify(others.map((p) => [p.type, p.body.toString('hex')]))}, publishes: ${JSON.stringify(publishes)}`;
  const gone = (): string | undefined => (closed ? 'the broker closed the connection' : undefined);

  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0x00, 0, 60]), str(clientId)]);
  socket.write(packet(0x10, body));
  const connack = await waiters.wait('CONNACK', 3000, () => others.find((p) => p.type === 2), describe, gone);
  if (connack.body[1] !== 0) throw new Error(`CONNACK return code ${String(connack.body[1])}`);
  socket.write(packet(0x82, Buffer.concat([Buffer.from([0, 1]), str(filter), Buffer.from([qos])])));
  const suback = await waiters.wait('SUBACK', 3000, () => others.find((p) => p.type === 9), describe, gone);
  if (suback.body[2] !== qos) throw new Error(`SUBACK granted ${String(suback.body[2])}, not QoS ${qos}`);

  return {
    publishes,
    /** Resolves with the first PUBLISH received (never acknowledged). */
    nextPublish: (timeoutMs = 3000) =>
      waiters.wait('PUBLISH', timeoutMs, () => publishes[0], describe, gone),
    /** Drops the TCP connection without DISCONNECT. */
    destroy: () => socket.destroy(),
  };
}
