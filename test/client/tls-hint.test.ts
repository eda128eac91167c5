/**
 * A plain mqtt:// connection to a port that speaks TLS says so, instead of a bare "connection closed".
 * Servers on 127.0.0.1 ephemeral ports, closed at the end.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { createBroker } from '../../src/broker/broker.js';
import { connect, ConnectionLostError, TransportError } from '../../src/client/index.js';
import { isTlsRecord } from '../../src/client/client.js';
import { makePki } from '../security/_pki.js';

const servers: net.Server[] = [];
after(() => { for (const s of servers) s.close(); });

/** a server that answers anything with these bytes, then closes */
async function answering(bytes: number[]): Promise<number> {
  const srv = net.createServer((s) => { s.once('data', () => s.end(Buffer.from(bytes))); s.on('error', () => undefined); });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return (srv.address() as net.AddressInfo).port;
}

test('isTlsRecord: alert and handshake records of SSL 3.0 .. TLS 1.3, and nothing MQTT', () => {
  assert.ok(isTlsRecord(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46])));
  assert.ok(isTlsRecord(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x10])));
  assert.ok(isTlsRecord(Buffer.from([0x15, 0x03, 0x00])));
  // not TLS: a CONNACK, a record of another content type, version bytes out of range, too short
  for (const b of [[0x20, 0x02, 0x00, 0x00], [0x17, 0x03, 0x03, 0x00], [0x15, 0x03, 0x05, 0x00], [0x16, 0x02, 0x03], [0x15, 0x03]]) {
    assert.equal(isTlsRecord(Buffer.from(b)), false, Buffer.from(b).toString('hex'));
  }
});

test('a TLS alert in answer to CONNECT: TransportError telling to use mqtts://', async () => {
  // 15 03 03 00 02 02 46: a fatal protocol_version alert, what a TLS server that answers garbage sends
  const port = await answering([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);
  await assert.rejects(connect(`mqtt://127.0.0.1:${port}`, { reconnect: false, connectTimeout: 3000 }),
    (e: unknown) => e instanceof TransportError && new RegExp(`127\\.0\\.0\\.1:${port} answered with TLS.*use mqtts://127\\.0\\.0\\.1:${port}`).test(e.message));
});

test('a CONNACK is not taken for TLS (the check looks only at TLS record headers)', async () => {
  const port = await answering([0x20, 0x02, 0x00, 0x00]);
  const c = await connect(`mqtt://127.0.0.1:${port}`, { reconnect: false, connectTimeout: 3000 });
  await c.end({ force: true });
});

test("Midge's own TLS listener: a plain connection closed without a byte gets the mqtts:// hint", async () => {
  const pki = await makePki();
  const broker = createBroker({
    sysInterval: 0,
    listeners: [{ port: 0, host: '127.0.0.1', tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) } }],
  });
  const [addr] = await broker.listen();
  try {
    await assert.rejects(connect(`mqtt://127.0.0.1:${addr!.port}`, { reconnect: false, connectTimeout: 3000 }),
      (e: unknown) => e instanceof ConnectionLostError && /before any answer to CONNECT \(if 127\.0\.0\.1:\d+ expects TLS, use mqtts:\/\/\)/.test(e.message));
    // the same port over mqtts:// works
    const ok = await connect(`mqtts://127.0.0.1:${addr!.port}`, { reconnect: false, tls: { ca: readFileSync(pki.ca), servername: 'localhost' } });
    await ok.end();
  } finally {
    await broker.close();
  }
});
