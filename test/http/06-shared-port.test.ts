/**
 * An http_listener on the port of a `protocol websockets` listener shares that listener's server: plain
 * HTTP requests get the metrics, the admin API and the dashboard; upgrades are MQTT. Real `midge broker`
 * processes on free 127.0.0.1 ports (127.0.0.2 stands for an address beyond loopback), the project's
 * client over ws:// and TCP. Bad configurations tried: TLS keys on the sharing http_listener, an http_dir on
 * the shared listener, another address than the shared listener's.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, type MqttClient } from '../../src/client/index.js';
import { ConfigError, parseConfigFile } from '../../src/config/index.js';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { killAll } from '../helpers/proc.js';
import { parsePrometheus, request, startHttpBroker, T } from './_util.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-http-shared-'));
const clients: MqttClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.end({ force: true })));
  await stopAllBrokers();
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function file(lines: string[]): string {
  const p = join(dir, `c${n++}.conf`);
  writeFileSync(p, lines.join('\n'));
  return p;
}

describe('an http_listener sharing a WebSocket listener\'s port', () => {
  test('on loopback: /metrics, the API and the dashboard on the port where ws:// MQTT reaches a TCP subscriber', T, async () => {
    const p = await freePort();
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', `listener ${p} 127.0.0.1`, 'protocol websockets', `http_listener ${p}`], true);
    assert.equal(b.http, `http://127.0.0.1:${p}`);
    await b.waitForLog(new RegExp(`Opening http listen socket on http://127\\.0\\.0\\.1:${p} \\(metrics and admin API, loopback: no login, sharing the websockets listener's port\\)`), 2_000);
    const info = await request(`${b.http}/api/v1/broker`);
    assert.equal(info.status, 200, info.text);
    const j = info.json as { listeners: Array<{ protocol: string; port: number }>; httpListeners: Array<{ port: number }> };
    assert.ok(j.listeners.some((l) => l.protocol === 'websockets' && l.port === p));
    assert.deepEqual(j.httpListeners.map((h) => h.port), [p]);
    const page = await request(`${b.http}/`);
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>Midge dashboard<\/title>/);
    // MQTT over ws:// on the same port, to a TCP subscriber
    const sub = await connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'shared-tcp-sub', reconnect: false });
    clients.push(sub);
    const got = new Promise<string>((resolve) => sub.on('message', (m) => resolve(`${m.topic} ${Buffer.from(m.payload).toString()}`)));
    await sub.subscribe('shared/#', { qos: 1 });
    const pub = await connect(`ws://127.0.0.1:${p}/mqtt`, { clientId: 'shared-ws-pub', reconnect: false });
    clients.push(pub);
    await pub.publish('shared/x', 'over the shared port', { qos: 1 });
    const timeout = new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no message within 5 s')), 5_000));
    assert.equal(await Promise.race([got, timeout]), 'shared/x over the shared port');
    // the metrics count what came over the WebSocket
    const m = await request(`${b.http}/metrics`);
    assert.equal(m.status, 200);
    const e = parsePrometheus(m.text);
    assert.ok((e.get('midge_messages_received_total', { qos: '1' }) ?? 0) >= 1);
    assert.ok((e.get('midge_clients_connected') ?? 0) >= 2);
  });

  test('beyond loopback (127.0.0.2): the API asks for credentials (401), /metrics stays open, MQTT upgrades still work', T, async () => {
    const p = await freePort();
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'allow_anonymous true', `listener ${p} 127.0.0.2`, 'protocol websockets', `http_listener ${p}`], true);
    assert.equal(b.http, `http://127.0.0.2:${p}`);
    await b.waitForLog(/login required, sharing the websockets listener's port/, 2_000);
    const api = await request(`${b.http}/api/v1/broker`);
    assert.equal(api.status, 401);
    assert.match(String(api.headers['www-authenticate']), /^Basic /);
    assert.equal((await request(`${b.http}/`)).status, 401);
    assert.equal((await request(`${b.http}/metrics`)).status, 200);
    const ws = await connect(`ws://127.0.0.2:${p}/mqtt`, { clientId: 'shared-beyond', reconnect: false });
    clients.push(ws);
    assert.equal(ws.connected, true);
  });

  test('bad configurations are refused with the file and line: TLS keys on the sharing http_listener, an http_dir, another address', () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['listener 9001', 'protocol websockets', 'http_listener 9001', 'certfile /h.crt', 'keyfile /h.key'],
        /shares the websockets listener on port 9001 \(.*:1\), so it takes that listener's TLS/, 4],
      [['listener 9001', 'protocol websockets', `http_dir ${dir}`, 'http_listener 9001'],
        /which has an http_dir: both would answer plain HTTP requests/, 4],
      [['listener 9001 127.0.0.1', 'protocol websockets', 'http_listener 9001 127.0.0.2'],
        /which is bound to 127\.0\.0\.1: give the http_listener no address/, 3],
    ];
    for (const [lines, message, line] of cases) {
      const path = file(lines);
      assert.throws(() => parseConfigFile(path), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, message);
        assert.equal(err.line, line);
        return true;
      }, lines.join(' / '));
    }
    // the same address, or none, shares; an http_listener on another port does not
    const ok = parseConfigFile(file(['listener 9001 127.0.0.1', 'protocol websockets', 'http_listener 9001 127.0.0.1', 'http_listener 9002']));
    assert.deepEqual(ok.httpListeners, [{ port: 9001, bindAddress: '127.0.0.1', sharesWebSocketListener: true }, { port: 9002 }]);
    // a TCP listener's port is not shared (the bind fails at start, as before)
    const tcp = parseConfigFile(file(['listener 9001', 'http_listener 9001']));
    assert.equal(tcp.httpListeners[0]!.sharesWebSocketListener, undefined);
  });
});
