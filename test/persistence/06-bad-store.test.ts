/**
 * Store states the broker must refuse to start on, with a non-zero exit code and one clear error that
 * names the file: a corrupt database file (garbage, or a Midge database cut in half), an SQLite database
 * that is not Midge's, a data directory already held by a running broker, and a persistence_location
 * that is a regular file. The bad file is left as it was.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MIDGE_MAIN, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { run, type RunResult } from '../helpers/proc.js';
import { closeRecordedClients, makeDataDir, persistConfig, recorded, removeDataDirs, startPersistent } from './_helpers.js';

after(async () => {
  await closeRecordedClients();
  await stopAllBrokers();
  removeDataDirs();
});

/** Runs `midge broker -c` on a config with persistence at `location`; it must exit by itself. */
async function startExpectingFailure(location: string): Promise<RunResult & { output: string }> {
  const confDir = makeDataDir('midge-conf-');
  const port = await freePort();
  const conf = join(confDir, 'broker.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\n${persistConfig(location)}`);
  const r = await run(process.execPath, [MIDGE_MAIN, 'broker', '-c', conf], { timeoutMs: 15_000 });
  return { ...r, output: r.stderr + r.stdout };
}

function assertClearFailure(r: RunResult & { output: string }, names: string): void {
  assert.notEqual(r.code, 0, `non-zero exit code (output: ${r.output})`);
  assert.notEqual(r.code, null, `exited by itself, not by signal ${String(r.signal)}`);
  assert.ok(r.output.includes(names), `the error names ${names}: ${r.output}`);
  assert.doesNotMatch(r.output, /^\s+at .+:\d+:\d+\)?$/m, 'no stack trace');
}

test('a corrupt midge.db (garbage bytes): exit code non-zero, the error names the file, the file is untouched', { timeout: 30_000 }, async (t) => {
  const dir = makeDataDir();
  const file = join(dir, 'midge.db');
  const garbage = randomBytes(16 * 1024);
  writeFileSync(file, garbage);
  const r = await startExpectingFailure(dir);
  t.diagnostic(`exit ${String(r.code)}: ${r.output.trim()}`);
  assertClearFailure(r, file);
  assert.ok(readFileSync(file).equals(garbage), 'the corrupt file was not replaced or changed');
});

test('a second broker on a data directory in use: it refuses to start; the first keeps serving', { timeout: 30_000 }, async (t) => {
  const dir = makeDataDir();
  const first = await startPersistent(dir);
  const pub = await recorded(first.broker.port, { clientId: 'lock-pub' });
  await pub.client.publishAsync('lock/r', 'mine', { qos: 1, retain: true });
  const r = await startExpectingFailure(dir);
  t.diagnostic(`exit ${String(r.code)}: ${r.output.trim()}`);
  assertClearFailure(r, join(dir, 'midge.db'));
  // the first broker still works and its store is intact
  await pub.client.publishAsync('lock/s', 'still', { qos: 1, retain: true });
  const sub = await recorded(first.broker.port, { clientId: 'lock-sub' });
  await sub.client.subscribeAsync('lock/#', { qos: 1 });
  await sub.until('two retained', 5_000, (g) => (g.length >= 2 ? true : undefined));
  assert.deepEqual(sub.got.map((g) => g.payload).sort(), ['mine', 'still']);
  await Promise.all([pub.end(), sub.end()]);
  await first.broker.stop();
  // and once it is stopped, the directory can be used again with everything in it
  const again = await startPersistent(dir);
  const sub2 = await recorded(again.broker.port, { clientId: 'lock-sub2' });
  await sub2.client.subscribeAsync('lock/#', { qos: 1 });
  await sub2.until('two retained', 5_000, (g) => (g.length >= 2 ? true : undefined));
  await sub2.end();
  await again.broker.stop();
});

test('persistence_location that is a regular file: exit code non-zero, the error names it', { timeout: 30_000 }, async (t) => {
  const dir = makeDataDir();
  const notDir = join(dir, 'plain-file');
  writeFileSync(notDir, 'not a directory\n');
  const r = await startExpectingFailure(notDir);
  t.diagnostic(`exit ${String(r.code)}: ${r.output.trim()}`);
  assertClearFailure(r, notDir);
  assert.equal(readFileSync(notDir, 'utf8'), 'not a directory\n', 'the file was left alone');
});

test('an SQLite database that is not Midge\'s: exit code non-zero, the error names the file, its tables are untouched', { timeout: 30_000 }, async (t) => {
  const dir = makeDataDir();
  const file = join(dir, 'midge.db');
  const db = new Database(file);
  db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine');");
  db.close();
  const before = readFileSync(file);
  const r = await startExpectingFailure(dir);
  t.diagnostic(`exit ${String(r.code)}: ${r.output.trim()}`);
  assertClearFailure(r, file);
  assert.ok(readFileSync(file).equals(before), 'the other application\'s database was not changed');
});

test('a Midge database cut in half: exit code non-zero, the error names the file', { timeout: 60_000 }, async (t) => {
  const dir = makeDataDir();
  const file = join(dir, 'midge.db');
  const first = await startPersistent(dir);
  const pub = await recorded(first.broker.port, { clientId: 'cut-pub' });
  const big = 'x'.repeat(2000);
  for (let i = 0; i < 300; i++) await pub.client.publishAsync(`cut/${i}`, `${i}${big}`, { qos: 1, retain: true });
  await pub.end();
  await first.broker.stop();
  assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0, 'a clean stop leaves everything in the main file');
  const size = statSync(file).size;
  truncateSync(file, Math.floor(size / 2 / 4096) * 4096);
  t.diagnostic(`midge.db: ${size} bytes, cut to ${statSync(file).size}`);
  const r = await startExpectingFailure(dir);
  t.diagnostic(`exit ${String(r.code)}: ${r.output.trim()}`);
  assertClearFailure(r, file);
});

test('a persistence_location that does not exist yet is created, and used', { timeout: 30_000 }, async () => {
  const dir = join(makeDataDir(), 'a', 'b');
  const first = await startPersistent(dir);
  assert.ok(existsSync(join(dir, 'midge.db')));
  await first.broker.stop();
});
