/**
 * `midge_log_format json`: `midge broker` writes its log as one JSON object a line (pino) to every log_dest,
 * with the same events and the same message text as the default mosquitto-style lines.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { connect } from '../../src/index.js';
import { MIDGE_MAIN, startMidge, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { killAll, run } from '../helpers/proc.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-log-json-'));
after(async () => {
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

interface JsonLine { level: string; time?: string; msg: string; clientId?: string; remoteAddress?: string; remotePort?: number; listenerPort?: number }

/** Connects a client with this id, publishes once, disconnects; waits for the broker's disconnect line. */
async function visit(broker: BrokerProcess, clientId: string): Promise<void> {
  const client = await connect(`mqtt://127.0.0.1:${broker.port}`, { clientId, reconnect: false });
  await client.publish('log/test', 'hello', { qos: 1 });
  await client.end();
  await broker.waitForLog(new RegExp(`Client ${clientId} \\[.*\\] disconnected\\.`), 5000);
}

/** The lines of one client's connection (found by its address:port), with ids and ports made comparable. */
function events(msgs: string[], clientId: string, port: number): string[] {
  const from = msgs.map((m) => new RegExp(`^New client connected from (127\\.0\\.0\\.1:\\d+) as ${clientId} `).exec(m)?.[1]).find((a) => a !== undefined);
  assert.ok(from !== undefined, `no connect line of ${clientId}:\n${msgs.join('\n')}`);
  return msgs.filter((m) => m.includes(`${from} `) || m.includes(`${from}]`) || m.endsWith(`${from} on port ${port}.`))
    .map((m) => m.replaceAll(`port ${port}`, 'port LISTENER').replaceAll(from, 'ADDRESS').replaceAll(clientId, 'CLIENT'));
}

test('midge_log_format json: every line is JSON with time, level, the mosquitto text and the client fields', { timeout: 30_000 }, async () => {
  const file = join(dir, 'midge.log');
  const jsonBroker = await startMidge({ config: `midge_log_format json\nlog_dest stdout\nlog_dest file ${file}\n` });
  const textBroker = await startMidge({ config: 'log_dest stdout\n' });
  await Promise.all([visit(jsonBroker, 'json-client'), visit(textBroker, 'text-client')]);
  await Promise.all([jsonBroker.stop(), textBroker.stop()]);

  const out = jsonBroker.logs().split('\n').filter((l) => l !== '');
  const lines = out.map((l) => {
    try { return JSON.parse(l) as JsonLine; } catch { assert.fail(`not JSON: ${l}`); }
  });
  for (const l of lines) {
    assert.equal(typeof l.msg, 'string');
    assert.ok(['error', 'warn', 'info', 'debug'].includes(l.level), l.level);
    assert.ok(l.time !== undefined && !Number.isNaN(Date.parse(l.time)), `time: ${l.time}`);
  }
  // the file destination has the same lines
  assert.deepEqual(readFileSync(file, 'utf8').split('\n').filter((l) => l !== ''), out);

  const msgs = lines.map((l) => l.msg);
  assert.ok(msgs.includes(`Opening ipv4 listen socket on port ${jsonBroker.port}.`), msgs.join('\n'));
  const connected = lines.find((l) => l.msg.startsWith('New client connected from ') && l.clientId === 'json-client');
  assert.ok(connected, msgs.join('\n'));
  assert.equal(connected.msg, `New client connected from 127.0.0.1:${connected.remotePort} as json-client (p2, c1, k60).`);
  assert.equal(connected.level, 'info');
  assert.equal(connected.remoteAddress, '127.0.0.1');
  assert.equal(connected.listenerPort, jsonBroker.port);
  const conn = lines.find((l) => l.msg.startsWith('New connection from ') && l.remotePort === connected.remotePort);
  assert.ok(conn, msgs.join('\n'));
  assert.equal(conn.msg, `New connection from 127.0.0.1:${connected.remotePort} on port ${jsonBroker.port}.`);
  const gone = lines.find((l) => l.msg.includes('disconnected') && l.clientId === 'json-client');
  assert.ok(gone, msgs.join('\n'));
  assert.equal(gone.msg, `Client json-client [127.0.0.1:${connected.remotePort}] disconnected.`);
  assert.equal(gone.remotePort, connected.remotePort);

  // the default format: the same events with the same text, after "<unix seconds>: "
  const text = textBroker.logs().split('\n').filter((l) => l !== '');
  for (const l of text) assert.match(l, /^\d{10}: \S/);
  const textMsgs = text.map((l) => l.replace(/^\d+: /, ''));
  const expected = events(textMsgs, 'text-client', textBroker.port);
  assert.deepEqual(expected, [
    'New connection from ADDRESS on port LISTENER.',
    'New client connected from ADDRESS as CLIENT (p2, c1, k60).',
    'Client CLIENT [ADDRESS] disconnected.',
  ]);
  assert.deepEqual(events(msgs, 'json-client', jsonBroker.port), expected);
});

test('midge_log_format json with log_timestamp false has no time; an unknown format is refused', { timeout: 30_000 }, async () => {
  const broker = await startMidge({ config: 'midge_log_format json\nlog_timestamp false\nlog_dest stdout\n' });
  await visit(broker, 'no-time');
  await broker.stop();
  const lines = broker.logs().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JsonLine);
  assert.ok(lines.length >= 4);
  for (const l of lines) assert.equal(l.time, undefined, JSON.stringify(l));

  const conf = join(dir, 'bad.conf');
  writeFileSync(conf, 'midge_log_format xml\n');
  const r = await run(process.execPath, [MIDGE_MAIN, 'broker', '-c', conf], { timeoutMs: 10_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /midge_log_format/);
});

test('log_dest json FILE: that destination is JSON while stdout keeps the mosquitto lines', { timeout: 30_000 }, async () => {
  const file = join(dir, 'json-only.log');
  const broker = await startMidge({ config: `log_dest stdout\nlog_dest json file ${file}\n` });
  await visit(broker, 'mixed-client');
  await broker.stop();
  const text = broker.logs().split('\n').filter((l) => l !== '');
  assert.ok(text.some((l) => /^\d+: New client connected from .* as mixed-client /.test(l)), text.join('\n'));
  assert.ok(text.every((l) => !l.startsWith('{')), 'stdout has no JSON lines');
  const json = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JsonLine);
  assert.ok(json.length > 0);
  assert.ok(json.some((l) => l.msg.startsWith('New client connected from ') && l.clientId === 'mixed-client'), JSON.stringify(json));
  // the same events in both: one line each
  assert.equal(json.length, text.length);
});

test('bad log_dest json lines are refused with the file and line: no value, none, json json, a stray word', { timeout: 30_000 }, async () => {
  for (const [line, want] of [
    ['log_dest json', /Empty log_dest json value/],
    ['log_dest json none', /Invalid log_dest json value "none"/],
    ['log_dest json json', /Invalid log_dest json value "json"/],
    ['log_dest json stdout extra', /Unexpected extra value "extra" for log_dest json:stdout/],
    ['log_dest json nowhere', /nowhere/],
  ] as const) {
    const conf = join(dir, 'bad.conf');
    writeFileSync(conf, `${line}\n`);
    const r = await run(process.execPath, [MIDGE_MAIN, 'broker', '-c', conf], { timeoutMs: 10_000 });
    assert.equal(r.code, 1, `${line}: ${r.stderr}`);
    assert.match(r.stderr, want, line);
    assert.match(r.stderr, /bad\.conf/, line);
  }
});
