import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, killAll } from '../helpers/proc.js';
import { MIDGE_MAIN, startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort, accepts } from '../helpers/ports.js';

// Bad command lines and config files: a clear message, exit code 1, and no broker left listening.
after(async () => {
  await stopAllBrokers();
  await killAll();
});

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
  ['--redis without a URL', async () => ['--redis'], /--redis argument given, but no Redis URL specified/],
  ['--redis with an http:// URL', async () => ['--redis', 'http://127.0.0.1:6379'], /Invalid Redis URL specified \(http:\/\/127\.0\.0\.1:6379\): the scheme must be redis, rediss or redis\+sentinel/],
  ['--redis with port 0', async () => ['--redis', 'redis://127.0.0.1:0'], /Invalid Redis URL specified .*the port must be a number from 1 to 65535, not "0"/],
  ['--redis with a database that is not a number', async () => ['--redis', 'redis://127.0.0.1:6379/db'], /the database must be a non-negative integer, not "db"/],
  ['--redis sentinel without a master name', async () => ['--redis', 'redis+sentinel://127.0.0.1:26379'], /the master name is missing/],
  ['--node-id without a name', async () => ['--node-id'], /--node-id argument given, but no node id specified/],
  ['--node-id with an empty name', async () => ['--node-id', ''], /Invalid node id specified \(\): a node id must not be empty/],
  ['--node-id with a space', async () => ['--node-id', 'a b'], /Invalid node id specified \(a b\): a node id must not contain whitespace/],
  ['--node-id of 129 bytes', async () => ['--node-id', 'n'.repeat(129)], /a node id is at most 128 bytes \(this one has 129\)/],
  ['a config with cluster_redis on port 70000', async () => ['-c', conf('badredis.conf', 'allow_anonymous true\ncluster_redis redis://127.0.0.1:70000\n')], /Invalid cluster_redis value .*badredis\.conf:2/],
];

test('midge broker --redis with a bad URL never prints the password', async () => {
  for (const url of ['redis://admin:hunter2@127.0.0.1:0', 'redis+sentinel://admin:hunter2@s1:26379', 'rediss://hunter2@h/x']) {
    const r = await midge(['--redis', url]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Invalid Redis URL specified/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  }
});

test('midge broker --redis and --node-id with good values pass --test-config, and the help names them', async () => {
  const r = await midge(['--redis', 'redis+sentinel://u:p@127.0.0.1:26379,127.0.0.1:26380/mymaster/1', '--node-id', 'node-a', '--test-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Configuration file is valid/);
  const h = await midge(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--redis URL/);
  assert.match(h.stdout, /--node-id NAME/);
  assert.match(h.stdout, /redis\+sentinel:\/\//);
});

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

describe('password and ACL file errors at start read like config errors: the file, why, and the config line', () => {
  const d = mkdtempSync(join(dir, 'files-'));
  const aDir = join(d, 'a-directory');
  mkdirSync(aDir);
  const missing = join(d, 'missing');
  const badPw = join(d, 'bad-passwd');
  writeFileSync(badPw, '# users\nno colon here\n');
  const badAcl = join(d, 'bad-acl');
  writeFileSync(badAcl, 'topic read a/#\ntopic sometimes b\n');
  const unreadable = join(d, 'unreadable');
  writeFileSync(unreadable, 'u:$7$101$aaaa$bbbb\n');
  chmodSync(unreadable, 0o000);

  /** starts the broker with these lines after `listener PORT 127.0.0.1`; returns [exit code, stderr, config path] */
  async function start(name: string, lines: string[]): Promise<[number | null, string, string]> {
    const path = conf(name, [`listener ${await freePort()} 127.0.0.1`, ...lines].join('\n') + '\n');
    const r = await midge(['-c', path]);
    return [r.code, r.stderr, path];
  }
  const cases: Array<[string, string, string, (file: string) => string]> = [
    ['a password_file that is a directory', 'password_file', aDir, (f) => `Unable to load password file ${f}: it is a directory (EISDIR)`],
    ['a password_file that does not exist', 'password_file', missing, (f) => `Unable to load password file ${f}: no such file (ENOENT)`],
    ['a password_file with a malformed line', 'password_file', badPw, (f) => `Unable to load password file ${f}:2: expected 'username:hash'`],
    ['an acl_file that is a directory', 'acl_file', aDir, (f) => `Unable to load ACL file ${f}: it is a directory (EISDIR)`],
    ['an acl_file that does not exist', 'acl_file', missing, (f) => `Unable to load ACL file ${f}: no such file (ENOENT)`],
    ['an acl_file with a malformed line', 'acl_file', badAcl,
      (f) => `Unable to load ACL file ${f}:2: invalid access type "sometimes" (expected read, write, readwrite or deny)`],
  ];
  for (const [name, key, file, why] of cases) {
    test(name, async () => {
      const [code, stderr, path] = await start(`${key}-${name.replaceAll(' ', '-')}.conf`, ['allow_anonymous false', `${key} ${file}`]);
      assert.deepEqual([code, stderr], [1, `Error: ${why(file)} (${key} in ${path}:3).\n`]);
    });
  }

  test('an unreadable password_file (chmod 000)', {
    skip: process.getuid?.() === 0 ? 'running as root, which reads a file whatever its mode' : false,
  }, async () => {
    const [code, stderr, path] = await start('unreadable.conf', ['password_file ' + unreadable]);
    assert.deepEqual([code, stderr], [1, `Error: Unable to load password file ${unreadable}: permission denied (EACCES) (password_file in ${path}:2).\n`]);
  });

  test('with per_listener_settings true, the line is the one in the listener\'s section', async () => {
    const path = conf('per-listener-pw.conf', ['per_listener_settings true', `listener ${await freePort()} 127.0.0.1`,
      'allow_anonymous true', `listener ${await freePort()} 127.0.0.1`, `password_file ${aDir}`, ''].join('\n'));
    const r = await midge(['-c', path]);
    assert.deepEqual([r.code, r.stderr], [1, `Error: Unable to load password file ${aDir}: it is a directory (EISDIR) (password_file in ${path}:5).\n`]);
  });
});

test('-v logs a connection closed for sending no CONNECT in time: address, port and why', async () => {
  const b = await startMidge({ config: 'midge_connect_timeout 1\n', verbose: true });
  const s = net.connect(b.port, '127.0.0.1');
  const local = await new Promise<number>((resolve) => s.once('connect', () => resolve(s.localPort!)));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  await b.waitForLog(new RegExp(`Client <unknown> \\[127\\.0\\.0\\.1:${local}\\] sent no CONNECT within 1 s, disconnecting\\.`), 5000);
  await closed;
  await b.stop();
});
