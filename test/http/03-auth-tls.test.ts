/**
 * Who may use the HTTP listener: bound to 127.0.0.2 (beyond loopback by Midge's rule: only 127.0.0.1,
 * ::1 and localhost count as loopback), every endpoint but /metrics needs an admin user of the password
 * file (HTTP Basic) or the bearer token; /metrics needs its own token when one is set. No response and
 * no log line contains a password or a token. Then HTTPS once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/auth/password-file.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { run } from '../helpers/proc.js';
import { allReplies, basic, bearer, parsePrometheus, request, startHttpBroker, T, type HttpBroker, type Reply } from './_util.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-http-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ADMIN_PW = 'Adm1n-Secret-Pw-7781';
const USER_PW = 'Plain-User-Pw-4410';
const TOKEN = 'tok-admin-9f8e7d6c5b4a39281706';
const METRICS_TOKEN = 'tok-metrics-0a1b2c3d4e5f6789';
const WRONG = 'Wrong-Guess-Pw-5555';
const SECRETS = [ADMIN_PW, USER_PW, TOKEN, METRICS_TOKEN, WRONG];

/** No secret in any reply (status line, headers, body) nor in the broker's stdout/stderr. */
function assertNoSecrets(replies: Reply[], logs: string): void {
  for (const r of replies) {
    const all = `${r.status} ${JSON.stringify(r.headers)} ${r.text}`;
    for (const s of SECRETS) assert.ok(!all.includes(s), `a reply contains a secret: ${all.slice(0, 300)}`);
    // nor their base64 (HTTP Basic)
    for (const s of SECRETS) assert.ok(!all.includes(Buffer.from(s).toString('base64')), 'a reply contains a base64 secret');
  }
  for (const s of SECRETS) {
    assert.ok(!logs.includes(s), `the broker's log contains the secret ${s.slice(0, 4)}...`);
    assert.ok(!logs.includes(Buffer.from(`admin:${s}`).toString('base64')), 'the log contains basic credentials');
  }
}

describe('authentication beyond loopback (bound to 127.0.0.2)', () => {
  let b: HttpBroker;
  before(async () => {
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, `admin:${await hashPassword(ADMIN_PW)}\nuser:${await hashPassword(USER_PW)}\n`);
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'metrics-token'), `${METRICS_TOKEN}\n`);
    b = await startHttpBroker([
      'listener {port} 127.0.0.1', 'allow_anonymous true', `password_file ${passwd}`, 'midge_failed_login_delay 0',
      'http_listener 0 127.0.0.2', 'http_admin_user admin', `http_token_file ${join(dir, 'token')}`,
    ], true);
  });
  after(() => stopAllBrokers());

  test('the listener says it needs a login', T, async () => {
    assert.match(b.http, /^http:\/\/127\.0\.0\.2:\d+$/);
    await b.waitForLog(/Opening http listen socket on .*login required/);
  });

  test('no credentials: 401 with WWW-Authenticate on every API endpoint; /metrics open (no metrics token)', T, async () => {
    for (const path of ['/api/v1/clients', '/api/v1/broker', '/api/v1/config', '/api/v1/openapi.json', '/api/v1/retained', '/']) {
      const r = await request(`${b.http}${path}`);
      assert.equal(r.status, 401, path);
      assert.match(String(r.headers['www-authenticate']), /^Basic realm="midge"/);
      assert.equal(typeof r.json.error, 'string');
    }
    const p = await request(`${b.http}/api/v1/publish`, { method: 'POST', body: JSON.stringify({ topic: 't', payload: 'x' }) });
    assert.equal(p.status, 401);
    const m = await request(`${b.http}/metrics`);
    assert.equal(m.status, 200);
    assert.ok(parsePrometheus(m.text).get('midge_clients_connected') !== undefined);
  });

  test('wrong credentials: 401; a right password of a user who is not an admin: 403', T, async () => {
    const cases: Array<[Record<string, string>, number]> = [
      [basic('admin', WRONG), 401],
      [basic('nobody', WRONG), 401],
      [basic('user', USER_PW), 403],
      [bearer(WRONG), 401],
      [bearer(''), 401],
      [{ authorization: 'Digest abc' }, 401],
      [{ authorization: 'Basic !!!' }, 401],
    ];
    for (const [headers, status] of cases) {
      const r = await request(`${b.http}/api/v1/clients`, { headers });
      assert.equal(r.status, status, `${headers.authorization}: ${r.text}`);
      assert.equal(typeof r.json.error, 'string');
      if (status === 401) assert.ok(r.headers['www-authenticate'] !== undefined);
    }
    await b.waitForLog(/HTTP 403 for GET \/api\/v1\/clients from 127\.0\.0\.\d+:\d+: this user is not an admin/);
    await b.waitForLog(/HTTP 401 for GET \/api\/v1\/clients from .*: invalid user name or password/);
  });

  test('right credentials pass: the admin user (Basic) and the bearer token', T, async () => {
    const u = await request(`${b.http}/api/v1/clients`, { headers: basic('admin', ADMIN_PW) });
    assert.equal(u.status, 200, u.text);
    assert.equal(u.json.total, 0);
    const t = await request(`${b.http}/api/v1/broker`, { headers: bearer(TOKEN) });
    assert.equal(t.status, 200);
    const p = await request(`${b.http}/api/v1/publish`, { method: 'POST', headers: bearer(TOKEN), body: JSON.stringify({ topic: 'a', payload: 'b' }) });
    assert.equal(p.status, 200);
    const c = await request(`${b.http}/api/v1/config`, { headers: basic('admin', ADMIN_PW) });
    assert.equal(c.status, 200);
    assert.equal(c.json.httpTokenFile, join(dir, 'token'), 'paths are shown');
    assert.deepEqual(c.json.httpAdminUsers, ['admin']);
    // an authorised 404 is a 404, not a 401
    assert.equal((await request(`${b.http}/api/v1/clients/ghost`, { headers: bearer(TOKEN) })).status, 404);
  });

  test('no reply and no log line contains a password or a token', T, async () => {
    assert.ok(allReplies.length >= 15);
    assertNoSecrets(allReplies, b.logs());
  });
});

describe('a metrics token beyond loopback', () => {
  let b: HttpBroker;
  before(async () => {
    writeFileSync(join(dir, 'token2'), `${TOKEN}\n`);
    writeFileSync(join(dir, 'metrics-token2'), `${METRICS_TOKEN}\n`);
    b = await startHttpBroker(['http_listener 0 127.0.0.2', `http_token_file ${join(dir, 'token2')}`,
      `http_metrics_token_file ${join(dir, 'metrics-token2')}`], true);
  });
  after(() => stopAllBrokers());

  test('/metrics needs the metrics token (or the admin token); the metrics token opens nothing else', T, async () => {
    const none = await request(`${b.http}/metrics`);
    assert.equal(none.status, 401);
    assert.ok(none.headers['www-authenticate'] !== undefined);
    assert.equal((await request(`${b.http}/metrics`, { headers: bearer(WRONG) })).status, 401);
    const ok = await request(`${b.http}/metrics`, { headers: bearer(METRICS_TOKEN) });
    assert.equal(ok.status, 200);
    assert.ok(parsePrometheus(ok.text).get('midge_uptime_seconds') !== undefined);
    assert.equal((await request(`${b.http}/metrics`, { headers: bearer(TOKEN) })).status, 200);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(METRICS_TOKEN) })).status, 401);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(TOKEN) })).status, 200);
    assertNoSecrets(allReplies, b.logs());
  });
});

describe('SIGHUP re-reads the token and password files', () => {
  after(() => stopAllBrokers());

  test('a new token replaces the old one; a bad token file keeps the previous credentials', T, async () => {
    const tokenFile = join(dir, 'token-hup');
    const passwd = join(dir, 'passwd-hup');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    writeFileSync(passwd, `admin:${await hashPassword(ADMIN_PW)}\n`);
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', `password_file ${passwd}`,
      'http_listener 0 127.0.0.2', 'http_admin_user admin', `http_token_file ${tokenFile}`]);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(TOKEN) })).status, 200);
    const NEW = 'tok-rotated-1122334455667788';
    writeFileSync(tokenFile, `${NEW}\n`);
    writeFileSync(passwd, `admin:${await hashPassword(WRONG)}\n`);
    b.kill('SIGHUP');
    await b.waitForLog(/Reloaded the http_listener credentials/);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(TOKEN) })).status, 401);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(NEW) })).status, 200);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: basic('admin', ADMIN_PW) })).status, 401);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: basic('admin', WRONG) })).status, 200);
    writeFileSync(tokenFile, 'short\n');
    b.kill('SIGHUP');
    await b.waitForLog(/Reload failed for the http_listener credentials, keeping the previous ones: http_token_file .* at least 16 characters/);
    assert.equal((await request(`${b.http}/api/v1/clients`, { headers: bearer(NEW) })).status, 200);
    assert.ok(!b.logs().includes(NEW) && !b.logs().includes(TOKEN) && !b.logs().includes('short\n'));
  });
});

describe('loopback and configuration errors', () => {
  afterEach(() => stopAllBrokers());

  test('bound to 127.0.0.1 (the default address): no login even with credentials configured', T, async () => {
    writeFileSync(join(dir, 'token3'), `${TOKEN}\n`);
    const b = await startHttpBroker(['http_listener 0', `http_token_file ${join(dir, 'token3')}`]);
    assert.match(b.http, /^http:\/\/127\.0\.0\.1:/);
    assert.equal((await request(`${b.http}/api/v1/clients`)).status, 200);
    assert.equal((await request(`${b.http}/metrics`)).status, 200);
  });

  test('a token file that is too short, or http_admin_user without a password_file, stops the broker with an error', T, async () => {
    writeFileSync(join(dir, 'short'), 'abc\n');
    const conf = join(dir, 'bad.conf');
    writeFileSync(conf, `listener 0 127.0.0.1\nhttp_listener 0\nhttp_token_file ${join(dir, 'short')}\n`);
    const r = await run(process.execPath, [join(process.cwd(), 'dist/src/cli/main.js'), 'broker', '-c', conf], { timeoutMs: 15_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /http_token_file .* must hold a token of at least 16 characters/);
    assert.ok(!r.stderr.includes('abc\n'));
    writeFileSync(conf, 'listener 0 127.0.0.1\nhttp_listener 0\nhttp_admin_user admin\n');
    const r2 = await run(process.execPath, [join(process.cwd(), 'dist/src/cli/main.js'), 'broker', '-c', conf], { timeoutMs: 15_000 });
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /http_admin_user needs a global password_file .*bad\.conf:3/);
  });
});

describe('HTTPS', () => {
  after(() => stopAllBrokers());

  test('certfile and keyfile after http_listener: metrics and the API over TLS', T, async () => {
    const key = join(dir, 'https.key');
    const crt = join(dir, 'https.crt');
    const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key,
      '-out', crt, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { timeoutMs: 15_000 });
    assert.equal(r.code, 0, r.stderr);
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', 'http_listener 0', `certfile ${crt}`, `keyfile ${key}`]);
    assert.match(b.http, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(crt);
    const m = await request(`${b.http}/metrics`, { ca });
    assert.equal(m.status, 200);
    assert.equal(parsePrometheus(m.text).get('midge_clients_connected'), 0);
    const info = await request(`${b.http}/api/v1/broker`, { ca });
    assert.equal(info.json.httpListeners[0].protocol, 'https');
    // the MQTT listener before it stayed plain TCP: its TLS keys went to the http_listener
    assert.deepEqual(info.json.listeners, [{ protocol: 'mqtt', host: '127.0.0.1', port: b.port, tls: false }]);
    // plain HTTP to the HTTPS port gets no answer
    await assert.rejects(request(b.http.replace('https:', 'http:') + '/metrics'));
  });
});
