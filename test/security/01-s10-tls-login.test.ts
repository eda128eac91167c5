/**
 * Walkthrough S10 end to end: `listener`, `cafile`, `certfile`, `keyfile`, `tls_version tlsv1.2`,
 * `allow_anonymous false`, `password_file` made with mosquitto_passwd; mosquitto_sub / mosquitto_pub,
 * the walkthrough's paho script and `midge sub` over TLS with the right password, and the refusals
 * without it, compared with Debian's mosquitto started from the same config.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { killAll, run, spawnLines } from '../helpers/proc.js';
import { PYTHON } from '../interop/walkthrough.js';
import { makePki, tlsLines, type Pki } from './_pki.js';
import {
  connectPacket, handshake, midge, midgeCli, midgeCliLines, mosquitto, mosquittoPub, mosquittoSub, mosquittoSubLines, plainTcp, T,
} from './_util.js';

let pki: Pki;
before(async () => { pki = await makePki(); });
after(() => pki.remove());
afterEach(async () => {
  await stopAllBrokers();
  await killAll();
});

/** S10's mosquitto.conf (the test's CA instead of Let's Encrypt's), with the throttle off for speed. */
function s10(extra: string[] = []): string[] {
  return ['listener {port} 127.0.0.1', ...tlsLines(pki), 'tls_version tlsv1.2', 'allow_anonymous false',
    `password_file ${pki.passwd}`, 'midge_failed_login_delay 0', ...extra];
}

const tlsArgs = (b: BrokerProcess): string[] => ['-h', 'localhost', '-p', String(b.port), '--cafile', pki.ca];

/** The walkthrough's paho subscriber, verbatim apart from the CA file, host and port. */
function pahoSubscriber(port: number, password: string): string {
  const file = join(pki.dir, `paho-${port}-${password}.py`);
  writeFileSync(file, `import paho.mqtt.client as mqtt

def on_connect(client, userdata, flags, rc):
    print("Connected with result code "+str(rc))

def on_message(client, userdata, message):
    print('topic:', message.topic)
    print('payload:', message.payload)
    print('qos:', message.qos)

client03 = mqtt.Client(client_id='client03', clean_session=False)
client03.tls_set(ca_certs='${pki.ca}')
client03.username_pw_set('mqtt', '${password}')
client03.on_connect = on_connect
client03.on_message = on_message

client03.connect('localhost', ${port})
client03.subscribe(topic='test', qos=1)
client03.loop_forever()
`);
  return file;
}

describe('S10: TLS and login with the right password', () => {
  test('mosquitto_sub -u mqtt -P test --cafile CA receives what mosquitto_pub sends over TLS with login', T, async () => {
    const b = await midge(s10());
    const sub = mosquittoSubLines([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 's10-sub', '-C', '1']);
    await b.waitForLog(/Sending SUBACK to s10-sub/);
    await mosquittoPub([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'hello over TLS', '-i', 's10-pub']);
    await sub.waitForLine(/^hello over TLS$/);
    assert.equal((await sub.exited).code, 0);
    await b.waitForLog(/New client connected from 127\.0\.0\.1:\d+ as s10-sub \(p2, c1, k60, u'mqtt'\)/);
  });

  test('the walkthrough\'s paho subscriber (tls_set + username_pw_set) receives a message', T, async () => {
    const b = await midge(s10());
    const paho = spawnLines(PYTHON, ['-u', pahoSubscriber(b.port, 'test')]);
    await paho.waitForLine(/^Connected with result code 0$/, 8000);
    await b.waitForLog(/Sending SUBACK to client03/);
    await mosquittoPub([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'abc', '-q', '1']);
    await paho.waitForLine(/^payload: b'abc'$/);
    assert.ok(paho.lines.includes('topic: test'), paho.lines.join('\n'));
    paho.kill();
  });

  test('midge sub --cafile CA -u mqtt -P test receives what midge pub sends', T, async () => {
    const b = await midge(s10());
    const sub = midgeCliLines(['sub', ...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'midge-sub', '-C', '1']);
    await b.waitForLog(/Sending SUBACK to midge-sub/, 8000);
    const pub = await midgeCli(['pub', ...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'from midge pub']);
    assert.equal(pub.code, 0, pub.stderr);
    await sub.waitForLine(/^from midge pub$/);
    assert.equal((await sub.exited).code, 0, sub.stderr());
  });
});

describe('S10: refused without the right password, as Debian\'s mosquitto refuses', () => {
  const cases: Array<[string, string[]]> = [
    ['a wrong password', ['-u', 'mqtt', '-P', 'Wr0ng-guess']],
    ['no username and no password', []],
    ['an unknown user', ['-u', 'nobody', '-P', 'test']],
    ['a username without a password', ['-u', 'mqtt']],
    ['a wrong password (MQTT 5)', ['-V', '5', '-u', 'mqtt', '-P', 'Wr0ng-guess']],
    ['no username (MQTT 5)', ['-V', '5']],
    ['a wrong password (MQTT 3.1)', ['-V', '31', '-u', 'mqtt', '-P', 'Wr0ng-guess']],
  ];
  const expected: Record<string, { code: number; stderr: string }> = {
    v3: { code: 5, stderr: 'Connection error: Connection Refused: not authorised.\n' },
    v5: { code: 135, stderr: 'Connection error: Not authorized\n' },
  };

  test('mosquitto_sub exits non-zero with mosquitto\'s own message for each refusal, on both brokers', T, async () => {
    const brokers: Array<[string, BrokerProcess]> = [['midge', await midge(s10())], ['mosquitto', await mosquitto(s10())]];
    for (const [name, b] of brokers) {
      for (const [what, args] of cases) {
        const r = await mosquittoSub([...tlsArgs(b), ...args, '-t', 'test', '-W', '3']);
        const want = args.includes('5') ? expected.v5! : expected.v3!;
        assert.deepEqual({ code: r.code, stderr: r.stderr }, want, `${name}, ${what}`);
      }
    }
  });

  test('the failed attempts are logged with client id and address, never with the password', T, async () => {
    const b = await midge(s10());
    await mosquittoSub([...tlsArgs(b), '-u', 'mqtt', '-P', 'Sup3r-S3cret-Guess', '-i', 'guesser', '-t', 'test', '-W', '3']);
    await mosquittoSub([...tlsArgs(b), '-i', 'anon-client', '-t', 'test', '-W', '3']);
    const line = await b.waitForLog(/Client guesser from 127\.0\.0\.1:\d+ failed to authenticate as 'mqtt': wrong password/);
    assert.match(line, /guesser/);
    await b.waitForLog(/Client anon-client from 127\.0\.0\.1:\d+ failed to authenticate: anonymous access is not allowed/);
    assert.ok(!b.logs().includes('Sup3r-S3cret-Guess'), 'the password must never be logged');
  });

  test('the walkthrough\'s paho subscriber with a wrong password gets result code 5', T, async () => {
    const b = await midge(s10());
    const paho = spawnLines(PYTHON, ['-u', pahoSubscriber(b.port, 'wrong')]);
    await paho.waitForLine(/^Connected with result code 5$/, 8000);
    paho.kill();
  });

  test('midge sub with a wrong password exits non-zero and says not authorised', T, async () => {
    const b = await midge(s10());
    const r = await midgeCli(['sub', ...tlsArgs(b), '-u', 'mqtt', '-P', 'wrong', '-t', 'test', '-W', '3']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not authori[sz]ed/i);
  });

  test('a plain-text entry in the password file never logs in, and is reported with a warning', T, async () => {
    const file = join(pki.dir, 'plain-passwd');
    writeFileSync(file, 'plain:test\n', { mode: 0o644 });
    const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous false', `password_file ${file}`, 'midge_failed_login_delay 0']);
    await b.waitForLog(/Warning: .*plain-passwd:1: plain-text password for user 'plain' ignored/);
    const r = await mosquittoSub(['-p', String(b.port), '-u', 'plain', '-P', 'test', '-t', 'test', '-W', '3']);
    assert.equal(r.code, 5, r.stderr);
  });
});

describe('client certificates', () => {
  const required = (): string[] => s10(['require_certificate true']);

  test('with require_certificate true, a client without a certificate fails the handshake on both brokers, and one with a certificate logs in', T, async () => {
    for (const start of [midge, mosquitto]) {
      const b = await start(required());
      const r = await mosquittoSub([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '3']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Error|error/);
      const ok = await mosquittoSub([...tlsArgs(b), '--cert', pki.clientCert, '--key', pki.clientKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '1']);
      assert.equal(ok.code, 27, `timed out waiting for messages means it connected: ${ok.stderr}`);
      await b.stop();
    }
  });

  test('a missing, expired, untrusted or revoked client certificate is logged with a clear reason and the broker keeps serving', T, async () => {
    const b = await midge(s10(['require_certificate true', `crlfile ${pki.crl}`]));
    const sub = mosquittoSubLines([...tlsArgs(b), '--cert', pki.clientCert, '--key', pki.clientKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'good-cert']);
    await b.waitForLog(/Sending SUBACK to good-cert/);
    const attempts: Array<[string[], RegExp]> = [
      [[], /no client certificate/],
      [['--cert', pki.expiredCert, '--key', pki.expiredKey], /the client certificate has expired/],
      [['--cert', pki.untrustedCert, '--key', pki.untrustedKey], /the client certificate is not signed by a trusted CA/],
      [['--cert', pki.revokedCert, '--key', pki.revokedKey], /the client certificate is revoked/],
    ];
    for (const [args, log] of attempts) {
      const r = await mosquittoSub([...tlsArgs(b), ...args, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '3']);
      assert.notEqual(r.code, 0, `${args.join(' ')} must not connect`);
      assert.notEqual(r.code, 27, `${args.join(' ')} must not connect`);
      await b.waitForLog(new RegExp(`Client connection from 127\\.0\\.0\\.1:\\d+ on port ${b.port} failed: ${log.source}`));
    }
    await mosquittoPub([...tlsArgs(b), '--cert', pki.clientCert, '--key', pki.clientKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'still serving']);
    await sub.waitForLine(/^still serving$/);
  });

  test('a crlfile with several CRLs uses all of them (the revoking one second)', T, async () => {
    const b = await midge(s10(['require_certificate true', `crlfile ${pki.crls}`]));
    const revoked = await mosquittoSub([...tlsArgs(b), '--cert', pki.revokedCert, '--key', pki.revokedKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '2']);
    assert.notEqual(revoked.code, 27, 'the revoked certificate must not connect');
    await b.waitForLog(/failed: the client certificate is revoked \(crlfile\)/);
    const good = await mosquittoSub([...tlsArgs(b), '--cert', pki.clientCert, '--key', pki.clientKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '1']);
    assert.equal(good.code, 27, good.stderr);
  });

  test('use_identity_as_username: the certificate CN is the username and no password is checked', T, async () => {
    const acl = join(pki.dir, 'acl-identity');
    writeFileSync(acl, 'user client1\ntopic readwrite ident/#\n', { mode: 0o644 });
    const b = await midge(s10(['require_certificate true', 'use_identity_as_username true', `acl_file ${acl}`]));
    const cert = ['--cert', pki.clientCert, '--key', pki.clientKey];
    // client1 is not in the password file, and a password given by the client does not matter
    const sub = mosquittoSubLines([...tlsArgs(b), ...cert, '-u', 'someone-else', '-P', 'whatever', '-t', 'ident/#', '-i', 'ident-sub', '-v']);
    await b.waitForLog(/New client connected from 127\.0\.0\.1:\d+ as ident-sub \(p2, c1, k60, u'client1'\)/);
    await b.waitForLog(/Sending SUBACK to ident-sub/);
    await mosquittoPub([...tlsArgs(b), ...cert, '-t', 'ident/x', '-m', 'by certificate']);
    await sub.waitForLine(/^ident\/x by certificate$/);
  });

  test('use_identity_as_username without require_certificate refuses every client with code 4, as mosquitto does', T, async () => {
    for (const start of [midge, mosquitto]) {
      const b = await start(s10(['use_identity_as_username true']));
      const r = await mosquittoSub([...tlsArgs(b), '--cert', pki.clientCert, '--key', pki.clientKey, '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '3']);
      assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: 4, stderr: 'Connection error: Connection Refused: bad user name or password.\n' });
      await b.stop();
    }
  });

  test('use_subject_as_username: the username is the subject in mosquitto\'s RFC 2253 form, on both brokers', T, async () => {
    const acl = join(pki.dir, 'acl-subject');
    writeFileSync(acl, `user ${pki.clientSubject}\ntopic readwrite subj/#\n`, { mode: 0o644 });
    for (const start of [midge, mosquitto]) {
      const b = await start(s10(['require_certificate true', 'use_subject_as_username true', `acl_file ${acl}`]));
      const cert = ['--cert', pki.clientCert, '--key', pki.clientKey];
      const sub = mosquittoSubLines([...tlsArgs(b), ...cert, '-t', 'subj/#', '-i', 'subj-sub', '-v']);
      await b.waitForLog(/Sending SUBACK to subj-sub/);
      const u = await b.waitForLog(/as subj-sub/);
      assert.ok(u.includes(`u'${pki.clientSubject}'`), u);
      await mosquittoPub([...tlsArgs(b), ...cert, '-t', 'subj/x', '-m', 'by subject']);
      await sub.waitForLine(/^subj\/x by subject$/);
      sub.kill();
      await b.stop();
    }
  });
});

describe('TLS versions and non-TLS clients', () => {
  test('tls_version tlsv1.2 accepts TLS 1.2 and 1.3 and refuses TLS 1.1 (openssl s_client -tls1_1), with a log line', T, async () => {
    const b = await midge(s10());
    const s = (args: string[]): Promise<{ code: number | null; out: string }> =>
      run('openssl', ['s_client', '-connect', `127.0.0.1:${b.port}`, '-CAfile', pki.ca, ...args], { timeoutMs: 8000, input: '' })
        .then((r) => ({ code: r.code, out: r.stdout + r.stderr }));
    const v13 = await s(['-tls1_3']);
    assert.match(v13.out, /New, TLSv1\.3, Cipher/);
    const v12 = await s(['-tls1_2']);
    assert.match(v12.out, /New, TLSv1\.2, Cipher/);
    // SECLEVEL=0 lets OpenSSL 3 offer TLS 1.1 at all, so that it is the broker that refuses it
    const v11 = await s(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.notEqual(v11.code, 0);
    assert.match(v11.out, /alert protocol version|unsupported protocol|no protocols available/);
    await b.waitForLog(/failed: the client offered only TLS versions this listener refuses \(tls_version\)/);
  });

  test('node tls.connect with maxVersion TLSv1.1 is refused; TLSv1.2 is accepted', T, async () => {
    const b = await midge(s10());
    const ca = readFileSync(pki.ca);
    const old = await handshake(b.port, { ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.equal(old.ok, false);
    const v12 = await handshake(b.port, { ca, maxVersion: 'TLSv1.2' });
    assert.deepEqual(v12, { ok: true, protocol: 'TLSv1.2' });
  });

  test('a plain-TCP MQTT client on the TLS port fails with a clear log line and does not affect a TLS client', T, async () => {
    const b = await midge(s10());
    const sub = mosquittoSubLines([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-i', 'tls-sub']);
    await b.waitForLog(/Sending SUBACK to tls-sub/);
    const plain = await plainTcp(b.port, connectPacket('plain-client'));
    const silent = await plainTcp(b.port, Buffer.alloc(0)); // connects and sends nothing
    const viaSub = await mosquittoSub(['-p', String(b.port), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-W', '3']);
    assert.notEqual(viaSub.code, 0, 'mosquitto_sub without --cafile must not get through');
    await b.waitForLog(new RegExp(`Client connection from 127\\.0\\.0\\.1:\\d+ on port ${b.port} failed: not a TLS handshake \\(a plain MQTT/TCP client on a TLS port\\?\\)`));
    await mosquittoPub([...tlsArgs(b), '-u', 'mqtt', '-P', 'test', '-t', 'test', '-m', 'unaffected']);
    await sub.waitForLine(/^unaffected$/);
    plain.destroy();
    silent.destroy();
  });
});
