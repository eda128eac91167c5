import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, killAll } from '../helpers/proc.js';
import { MIDGE_MAIN } from '../helpers/broker-process.js';
import { freePort, accepts } from '../helpers/ports.js';

// Bad command lines and config files: a clear message, exit code 1, and no broker left listening.
after(() => killAll());

const dir = mkdtempSync(join(tmpdir(), 'midge-broker-cli-'));
const midge = (args: string[]) => run(process.execPath, [MIDGE_MAIN, 'broker', ...args], { timeoutMs: 10_000 });

function conf(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const cases: Array<[string, () => Promise<string[]>, RegExp]> = [
  ['an unknown flag', async () => ['--bogus'], /Unknown option '--bogus'/],
  ['-p without a port', async () => ['-p'], /-p argument given, but no port specified/],
  ['-p with a port that is not a number', async () => ['-p', 'abc'], /Invalid port specified \(abc\)/],
  ['-p with a port above 65535', async () => ['-p', '70000'], /Invalid port specified \(70000\)/],
  ['-c without a file', async () => ['-c'], /-c argument given, but no config file specified/],
  ['-c with a file that does not exist', async () => ['-c', join(dir, 'missing.conf')], /missing\.conf/],
  ['a config with an unknown key', async () => ['-c', conf('unknown.conf', 'allow_anonymous true\nbogus_key 1\n')], /Unknown configuration variable "bogus_key".*unknown\.conf:2/],
  ['a config with a malformed value', async () => ['-c', conf('badval.conf', `listener ${await freePort()} 127.0.0.1\nmax_inflight_messages lots\n`)], /max_inflight_messages.*badval\.conf:2/],
  ['a config with a port out of range', async () => ['-c', conf('badport.conf', 'listener 99999\n')], /badport\.conf:1/],
];

for (const [name, args, message] of cases) {
  test(`midge broker refuses ${name} with a clear message and exit code 1`, async () => {
    const r = await midge(await args());
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  });
}

test('a config error leaves no broker listening on the configured port', async () => {
  const port = await freePort();
  const r = await midge(['-c', conf('late-error.conf', `listener ${port} 127.0.0.1\nallow_anonymous true\nnot_a_key x\n`)]);
  assert.equal(r.code, 1);
  assert.equal(await accepts(port), false);
});

test('a port already in use is reported and the broker exits 1', async () => {
  const net = await import('node:net');
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  try {
    const r = await midge(['-p', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Address already in use/);
  } finally {
    server.close();
  }
});

test('--help prints the usage and exits 0', async () => {
  const r = await run(process.execPath, [MIDGE_MAIN, 'broker', '--help'], { timeoutMs: 10_000 });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: midge broker/);
});
