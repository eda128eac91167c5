/**
 * The Midge-only keys of the HTTP listener in mosquitto.conf syntax: `http_listener PORT [ADDRESS]`
 * (repeatable), `certfile` / `keyfile` after it for HTTPS (as after a `listener`), `http_admin_user`,
 * `http_token_file`, `http_metrics_token_file`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, parseConfigFile } from '../../src/config/index.js';
import { maskSecrets } from '../../src/http/mask.js';
import { isLoopbackHost } from '../../src/http/auth.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-http-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(lines: string[]): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, lines.join('\n'));
  return p;
}

function assertError(lines: string[], message: RegExp, line: number): void {
  const path = file(lines);
  assert.throws(() => parseConfigFile(path), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, message);
    assert.equal(err.file, path);
    assert.equal(err.line, line);
    return true;
  });
}

describe('http_listener keys', () => {
  test('several http listeners, loopback by default, TLS keys after one apply to it alone', () => {
    const cfg = parseConfigFile(file([
      'listener 1883', 'certfile /m.crt', 'keyfile /m.key',
      'http_listener 8080', 'certfile /h.crt', 'keyfile /h.key',
      'http_listener 9090 0.0.0.0',
      'listener 1884', 'max_connections 5',
      'http_admin_user ops', 'http_admin_user root', 'http_admin_user ops',
      'http_token_file /etc/midge/token file', 'http_metrics_token_file /etc/midge/metrics',
    ]));
    assert.deepEqual(cfg.httpListeners, [{ port: 8080, certfile: '/h.crt', keyfile: '/h.key' }, { port: 9090, bindAddress: '0.0.0.0' }]);
    assert.equal(cfg.listeners.length, 2);
    assert.equal(cfg.listeners[0]!.certfile, '/m.crt');
    assert.equal(cfg.listeners[1]!.certfile, undefined);
    assert.equal(cfg.listeners[1]!.maxConnections, 5);
    assert.deepEqual(cfg.httpAdminUsers, ['ops', 'root']);
    assert.equal(cfg.httpTokenFile, '/etc/midge/token file');
    assert.equal(cfg.httpMetricsTokenFile, '/etc/midge/metrics');
  });

  test('errors name the file and line', () => {
    assertError(['http_listener'], /Empty http_listener value/, 1);
    assertError(['http_listener abc'], /Invalid http_listener port value/, 1);
    assertError(['http_listener 70000'], /Invalid http_listener port value/, 1);
    assertError(['http_listener 80 a b'], /Unexpected extra value "b"/, 1);
    assertError(['http_listener 8080', 'max_connections 3'], /max_connections does not apply to an http_listener/, 2);
    assertError(['http_listener 8080', 'cafile /ca.pem'], /cafile does not apply to an http_listener/, 2);
    assertError(['listener 1883', 'http_listener 8080', 'certfile /h.crt'], /http_listener on port 8080 has a certfile but no keyfile/, 3);
    assertError(['http_listener 8080', '', 'keyfile /h.key'], /http_listener on port 8080 has a keyfile but no certfile/, 3);
    assertError(['http_listener 8080', 'http_listener 8080'], /Duplicate http_listener on port 8080/, 2);
  });

  test('global keys after an http_listener are still global', () => {
    const cfg = parseConfigFile(file(['http_listener 0', 'allow_anonymous true', 'max_queued_messages 7']));
    assert.equal(cfg.allowAnonymous, true);
    assert.equal(cfg.maxQueuedMessages, 7);
  });

  test('loopback is exactly 127.0.0.1, ::1 and localhost', () => {
    for (const h of ['127.0.0.1', '::1', 'localhost']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['127.0.0.2', '0.0.0.0', '::', '10.0.0.1', 'example.org', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  });

  test('configuration shown by the API: secrets masked, paths shown, Buffers never', () => {
    const shown = maskSecrets({
      passwordFile: '/etc/p', keyfile: '/k.pem', httpTokenFile: '/t', password: 'pw', token: 'tk', nested: [{ tls: { key: Buffer.from('KEY'), cert: 'PEM', passphrase: 'x' } }],
      hook: () => 1, n: 3,
    }) as Record<string, unknown>;
    assert.deepEqual(shown, {
      passwordFile: '/etc/p', keyfile: '/k.pem', httpTokenFile: '/t', password: '***', token: '***', nested: [{ tls: { key: '***', cert: '***', passphrase: '***' } }], n: 3,
    });
  });
});
