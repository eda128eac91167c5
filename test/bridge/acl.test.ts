/**
 * The bridge's local side is a client of the local broker with local_clientid and local_username: the ACL
 * file decides what it may take out (read) and bring in (write), as in mosquitto; no password is asked of it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMidge, startMosquitto, stopAllBrokers } from '../helpers/broker-process.js';
import { killAll, run } from '../helpers/proc.js';
import { logLines, publish, sleep, subscribe, until } from './_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-bridge-acl-'));
after(async () => {
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

test('local_username edge (no local_password) with password_file and acl_file: only ok/# goes out and only in/# comes in', { timeout: 60_000 }, async () => {
  const passwd = join(dir, 'passwd');
  const r = await run('mosquitto_passwd', ['-b', '-c', passwd, 'pub', 'secret'], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, r.stderr);
  const acl = join(dir, 'acl');
  writeFileSync(acl, ['user pub', 'topic readwrite #', '', 'user edge', 'topic read ok/#', 'topic write in/#', ''].join('\n'));
  const remote = await startMosquitto({ verbose: true });
  const local = await startMidge({
    verbose: true,
    config: ['listener {port} 127.0.0.1', 'allow_anonymous false', `password_file ${passwd}`, `acl_file ${acl}`,
      'connection acl', `address 127.0.0.1:${remote.port}`, 'remote_clientid edge-acl', 'local_username edge', 'topic # both 1'].join('\n'),
  });
  await until('bridge up', 10_000, () => logLines(local, /Bridge acl connected to/).length === 1);
  assert.match(local.logs(), /New client connected from bridge\/acl:0 as local\.edge-acl \(p5, c0, k0, u'edge'\)/);
  const creds = ['-u', 'pub', '-P', 'secret'];
  const rsub = await subscribe(remote, ['#'], { qos: 1 });
  const lsub = await subscribe(local, ['ok/#', 'no/#', 'in/#', 'bad/#'], { qos: 1, extra: creds });
  await publish(local, 'no/1', 'denied-read', 1, creds);
  await publish(local, 'ok/1', 'allowed-read', 1, creds);
  await publish(remote, 'bad/1', 'denied-write', 1);
  await publish(remote, 'in/1', 'allowed-write', 1);
  await until('messages', 5000, () => rsub.lines.length >= 3 && lsub.lines.length >= 3);
  await sleep(1000);
  rsub.kill();
  lsub.kill();
  assert.deepEqual(rsub.lines.filter((l) => !l.includes('$SYS')).sort(), ['1 0 bad/1 denied-write', '1 0 in/1 allowed-write', '1 0 ok/1 allowed-read'],
    'the remote got ok/1 from the bridge, not no/1');
  assert.deepEqual(lsub.lines.sort(), ['1 0 in/1 allowed-write', '1 0 no/1 denied-read', '1 0 ok/1 allowed-read'],
    'the local broker got in/1 from the bridge, not bad/1');
  assert.ok(logLines(local, /Denied PUBLISH from local\.edge-acl .*'bad\/1'/).length === 1, local.logs());
});
