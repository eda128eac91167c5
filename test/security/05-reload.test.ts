/**
 * SIGHUP reloads the password file, the ACL file and the certificates while clients stay connected; a
 * bad file on reload is reported and the one in force stays.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { after, afterEach, before, describe, test } from 'node:test';
import { stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { closeAllClients, collect, connect, expectNoMessage } from '../helpers/mqttjs.js';
import { killAll, run } from '../helpers/proc.js';
import { makePki, type Pki } from './_pki.js';
import { anotherPort, midge, mosquittoPub, mosquittoSub, mosquittoSubLines, T } from './_util.js';

let pki: Pki;
before(async () => { pki = await makePki(); });
after(() => pki.remove());
afterEach(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
});

const ACL = 'user mqtt\ntopic readwrite test\ntopic readwrite test/#\nuser newuser\ntopic readwrite test\n';

interface Setup { b: BrokerProcess; dir: string; tlsPort: number; config: string }

async function setup(): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-reload-'));
  copyFileSync(pki.passwd, join(dir, 'passwd'));
  copyFileSync(pki.serverCert, join(dir, 'server.crt'));
  copyFileSync(pki.serverKey, join(dir, 'server.key'));
  writeFileSync(join(dir, 'acl'), ACL);
  const tlsPort = await anotherPort();
  const b = await midge(['listener {port} 127.0.0.1', `listener ${tlsPort} 127.0.0.1`, `cafile ${pki.ca}`,
    `certfile ${join(dir, 'server.crt')}`, `keyfile ${join(dir, 'server.key')}`, 'allow_anonymous false',
    `password_file ${join(dir, 'passwd')}`, `acl_file ${join(dir, 'acl')}`, 'midge_failed_login_delay 0']);
  const loaded = await b.waitForLog(/Config loaded from /);
  await b.waitForLog(/ running$/);
  return { b, dir, tlsPort, config: loaded.replace(/^\d+: Config loaded from (.*)\.$/, '$1') };
}

/** Resolves when `re` has matched `count` log lines. */
function logCount(b: BrokerProcess, re: RegExp): number {
  return b.logs().split('\n').filter((l) => re.test(l)).length;
}
async function hup(b: BrokerProcess, expect: RegExp): Promise<void> {
  const before = logCount(b, expect);
  b.kill('SIGHUP');
  const deadline = Math.round(performance.now()) + 5000;
  while (logCount(b, expect) <= before) {
    if (Math.round(performance.now()) > deadline) throw new Error(`no new log line matching ${String(expect)} after SIGHUP\n${b.logs()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const RELOADED = /Reloaded password, ACL and certificate files\./;

const login = (s: Setup, user: string, password: string): Promise<{ code: number | null }> =>
  mosquittoSub(['-p', String(s.b.port), '-u', user, '-P', password, '-t', 'test', '-W', '1']);
const CONNECTED = 27; // mosquitto_sub -W timed out waiting for a message: it had logged in

function serialOf(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(pki.ca) }, () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial);
    });
    socket.setTimeout(5000, () => { socket.destroy(); reject(new Error('TLS handshake timed out')); });
    socket.once('error', reject);
  });
}
const serialOfFile = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;

describe('SIGHUP', () => {
  test('a connected subscriber keeps receiving, and a user added to the password file can log in after it', T, async () => {
    const s = await setup();
    const sub = mosquittoSubLines(['-p', String(s.b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'keep-sub']);
    const tlsSub = mosquittoSubLines(['-h', 'localhost', '-p', String(s.tlsPort), '--cafile', pki.ca, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'keep-tls-sub']);
    await s.b.waitForLog(/Sending SUBACK to keep-sub/);
    await s.b.waitForLog(/Sending SUBACK to keep-tls-sub/);
    await mosquittoPub(['-p', String(s.b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'before']);
    await sub.waitForLine(/^before$/);
    assert.equal((await login(s, 'newuser', 'newpw')).code, 5);

    const added = await run('mosquitto_passwd', ['-b', join(s.dir, 'passwd'), 'newuser', 'newpw'], { timeoutMs: 5000 });
    assert.equal(added.code, 0, added.stderr);
    await hup(s.b, RELOADED);

    assert.equal((await login(s, 'newuser', 'newpw')).code, CONNECTED);
    await mosquittoPub(['-p', String(s.b.port), '-u', 'newuser', '-P', 'newpw', '-t', 'test', '-m', 'after']);
    await sub.waitForLine(/^after$/);
    await tlsSub.waitForLine(/^after$/);
    assert.ok(!s.b.logs().includes('keep-sub disconnected') && !/keep-sub .*closed/.test(s.b.logs()), 'the subscriber stayed connected');
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('a broken password file on reload is reported and the old one stays in force', T, async () => {
    const s = await setup();
    const sub = mosquittoSubLines(['-p', String(s.b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'keep-sub2']);
    await s.b.waitForLog(/Sending SUBACK to keep-sub2/);
    writeFileSync(join(s.dir, 'passwd'), 'this line is not username:hash\nmqtt\n');
    await hup(s.b, /Error: Reload failed, keeping the previous password and ACL files: Unable to load password file .*passwd:2: expected 'username:hash'/);
    assert.equal((await login(s, 'mqtt', 'test')).code, CONNECTED, 'the old password file is still in force');
    await mosquittoPub(['-p', String(s.b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'still here']);
    await sub.waitForLine(/^still here$/);
    // a broken ACL file is refused the same way
    copyFileSync(pki.passwd, join(s.dir, 'passwd'));
    writeFileSync(join(s.dir, 'acl'), 'user mqtt\ntopic sometimes test\n');
    await hup(s.b, /Error: Reload failed, keeping the previous password and ACL files: Unable to load ACL file .*acl:2: invalid access type "sometimes"/);
    await mosquittoPub(['-p', String(s.b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'old acl']);
    await sub.waitForLine(/^old acl$/);
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('ACL changes apply to new subscriptions and to deliveries to clients already connected', T, async () => {
    const s = await setup();
    const c = await connect(s.b.port, { clientId: 'acl-watch', username: 'mqtt', password: 'test' });
    await c.subscribeAsync('test/#');
    const p = await connect(s.b.port, { clientId: 'acl-pub', username: 'mqtt', password: 'test' });
    await p.publishAsync('test/secret', 'readable now', { qos: 1 });
    assert.deepEqual((await collect(c, 1)).map((m) => m.payload), ['readable now']);
    writeFileSync(join(s.dir, 'acl'), `${ACL}user mqtt\ntopic deny test/secret\n`);
    await hup(s.b, RELOADED);
    await p.publishAsync('test/secret', 'denied now', { qos: 1 });
    await p.publishAsync('test/open', 'still readable', { qos: 1 });
    assert.deepEqual((await collect(c, 1)).map((m) => m.payload), ['still readable']);
    await expectNoMessage(c, 200);
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('certificates are reloaded for new connections; a bad certificate file keeps the old one', T, async () => {
    const s = await setup();
    const tlsSub = mosquittoSubLines(['-h', 'localhost', '-p', String(s.tlsPort), '--cafile', pki.ca, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'tls-stays']);
    await s.b.waitForLog(/Sending SUBACK to tls-stays/);
    assert.equal(await serialOf(s.tlsPort), serialOfFile(pki.serverCert));
    copyFileSync(pki.serverCert2, join(s.dir, 'server.crt'));
    copyFileSync(pki.serverKey2, join(s.dir, 'server.key'));
    await hup(s.b, RELOADED);
    assert.equal(await serialOf(s.tlsPort), serialOfFile(pki.serverCert2));
    writeFileSync(join(s.dir, 'server.crt'), 'not a certificate\n');
    await hup(s.b, new RegExp(`Error: Reload failed for the certificates of the listener on port ${s.tlsPort}, keeping the previous ones`));
    assert.equal(await serialOf(s.tlsPort), serialOfFile(pki.serverCert2));
    await mosquittoPub(['-h', 'localhost', '-p', String(s.tlsPort), '--cafile', pki.ca, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'same session']);
    await tlsSub.waitForLine(/^same session$/);
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('a config file that no longer parses is reported with file and line, and nothing changes', T, async () => {
    const s = await setup();
    const text = readFileSync(s.config, 'utf8');
    writeFileSync(s.config, `${text}no_such_option 1\n`);
    const line = text.split('\n').length;
    await hup(s.b, new RegExp(`Error: Reload failed, keeping the previous configuration: Unknown configuration variable "no_such_option" in ${s.config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}\\.`));
    assert.equal((await login(s, 'mqtt', 'test')).code, CONNECTED);
    rmSync(s.dir, { recursive: true, force: true });
  });

  test('a changed allow_anonymous and password_file in the config file are applied', T, async () => {
    const s = await setup();
    assert.equal((await mosquittoSub(['-p', String(s.b.port), '-t', 'test', '-W', '1'])).code, 5);
    const other = join(s.dir, 'passwd2');
    const made = await run('mosquitto_passwd', ['-c', '-b', other, 'second', 'pw2'], { timeoutMs: 5000 });
    assert.equal(made.code, 0, made.stderr);
    const text = readFileSync(s.config, 'utf8')
      .replace('allow_anonymous false', 'allow_anonymous true')
      .replace(/password_file .*/, `password_file ${other}`)
      .replace(/acl_file .*\n/, '');
    writeFileSync(s.config, text);
    await hup(s.b, RELOADED);
    assert.equal((await mosquittoSub(['-p', String(s.b.port), '-t', 'test', '-W', '1'])).code, CONNECTED);
    assert.equal((await login(s, 'second', 'pw2')).code, CONNECTED);
    assert.equal((await login(s, 'mqtt', 'test')).code, 5, 'mqtt is not in the new password file');
    rmSync(s.dir, { recursive: true, force: true });
  });
});
