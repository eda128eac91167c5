/**
 * The client library's browser bundle (dist/browser/midge-client.js, built by `npm run build`) in headless
 * Chromium: an ES module with no Node built-ins, loaded in a page; it connects over ws:// with the browser's
 * WebSocket, does a publish/subscribe round trip with itself at QoS 0, 1 and 2, receives what mosquitto_pub
 * publishes over TCP and publishes to a mosquitto_sub over TCP.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll, spawnLines } from '../helpers/proc.js';
import { mosquittoPub, untilSubscribed } from '../interop/walkthrough.js';
import { launchChromium, recordErrors, screenshot, startDashBroker, until, type DashBroker } from './_browser.js';

const T = { timeout: 30_000 };
const BUNDLE = fileURLToPath(new URL('../../browser/midge-client.js', import.meta.url));
const PAGE = '<!doctype html><link rel="icon" href="data:,"><title>bundle</title><pre id="out"></pre>';

/**
 * A static server on 127.0.0.1 for the page and dist/browser/midge-client.js (the shipped file, not the
 * dashboard's copy). Loopback, as the broker's WebSocket listener: Chromium's local network access checks
 * refuse a page of a public (or unknown) origin a WebSocket to 127.0.0.1.
 */
function serveBundle(bundle: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const body = req.url === '/midge-client.js' ? bundle : req.url === '/' ? PAGE : undefined;
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': req.url === '/' ? 'text/html' : 'text/javascript' });
    res.end(body ?? 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

let b: DashBroker;
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];
let web: { server: Server; url: string } | undefined;

before(async () => {
  b = await startDashBroker();
  browser = await launchChromium();
  page = await browser.newPage();
  errors = recordErrors(page);
  web = await serveBundle(readFileSync(BUNDLE, 'utf8'));
  await page.goto(`${web.url}/`);
  await page.evaluate(async ({ url, spec }) => {
    const lib = await import(spec);
    const client = await lib.connect(url, { clientId: 'browser-bundle' });
    const w = window as unknown as { client: unknown; got: Array<{ topic: string; payload: string; qos: number }> };
    w.client = client;
    w.got = [];
    client.on('message', (m: { topic: string; payload: Uint8Array; qos: number }) => {
      w.got.push({ topic: m.topic, payload: new TextDecoder().decode(m.payload), qos: m.qos });
      document.getElementById('out')!.textContent += `${m.topic} ${m.qos} ${new TextDecoder().decode(m.payload)}\n`;
    });
  }, { url: `ws://127.0.0.1:${b.wsPort}/mqtt`, spec: '/midge-client.js' });
});

after(async () => {
  await browser?.close();
  web?.server.closeAllConnections();
  await new Promise((r) => (web ? web.server.close(r) : r(undefined)));
  await stopAllBrokers();
  await killAll();
});

type Got = Array<{ topic: string; payload: string; qos: number }>;
const received = (): Promise<Got> => page.evaluate(() => (window as unknown as { got: Got }).got);

describe('the browser client bundle in headless Chromium', () => {
  test('is one ES module with no Node built-in, its size as the README states', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    assert.doesNotMatch(text, /\bfrom\s*["']node:|import\(\s*["']node:|\brequire\(\s*["']/, 'a Node import in the bundle');
    assert.doesNotMatch(text, /\bimport\s*["'][^"']+["']|\bfrom\s*["'](?!\.)/, 'a bare import in the bundle');
    const kib = (statSync(BUNDLE).size / 1024).toFixed(0);
    const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
    assert.match(readme, new RegExp(`midge-client\\.js[^]{0,300}?\\b${kib} KiB`), `the README states the bundle's size (${kib} KiB)`);
  });

  test('connects over ws:// with the same API: clientId, connected, protocolVersion', T, async () => {
    const info = await page.evaluate(() => {
      const c = (window as unknown as { client: { clientId: string; connected: boolean; protocolVersion: number } }).client;
      return { id: c.clientId, connected: c.connected, version: c.protocolVersion };
    });
    assert.deepEqual(info, { id: 'browser-bundle', connected: true, version: 4 });
    const r = await fetch(`${b.http}/api/v1/clients/browser-bundle`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { listenerPort: number }).listenerPort, b.wsPort);
  });

  test('publish/subscribe round trip with itself at QoS 0, 1 and 2', T, async () => {
    const granted = await page.evaluate(async () => {
      const c = (window as unknown as { client: { subscribe(f: string, o: object): Promise<number>; publish(t: string, p: string, o: object): Promise<unknown> } }).client;
      const g = await c.subscribe('browser/echo/#', { qos: 2 });
      for (const qos of [0, 1, 2]) await c.publish(`browser/echo/${qos}`, `echo ${qos} ✓`, { qos });
      return g;
    });
    assert.equal(granted, 2);
    const got = await until('three echoes', 5_000, async () => {
      const g = (await received()).filter((m) => m.topic.startsWith('browser/echo/'));
      return g.length >= 3 ? g : undefined;
    });
    assert.deepEqual(got.map((m) => [m.topic, m.payload, m.qos]).sort(), [
      ['browser/echo/0', 'echo 0 ✓', 0], ['browser/echo/1', 'echo 1 ✓', 1], ['browser/echo/2', 'echo 2 ✓', 2],
    ]);
  });

  test('receives what mosquitto_pub publishes over TCP', T, async () => {
    await page.evaluate(async () => {
      const c = (window as unknown as { client: { subscribe(f: string, o: object): Promise<number> } }).client;
      await c.subscribe('browser/in', { qos: 1 });
    });
    await mosquittoPub(b.port, ['-t', 'browser/in', '-q', '1', '-m', 'from mosquitto_pub']);
    const m = await until('the message from TCP', 5_000, async () => (await received()).find((x) => x.topic === 'browser/in'));
    assert.deepEqual(m, { topic: 'browser/in', payload: 'from mosquitto_pub', qos: 1 });
  });

  test('publishes to a mosquitto_sub over TCP, then ends cleanly', T, async () => {
    const sub = spawnLines('mosquitto_sub', ['-p', String(b.port), '-t', 'browser/out', '-q', '2', '-F', '%q %p']);
    await untilSubscribed(b.port, sub, 'browser/out');
    await page.evaluate(async () => {
      const c = (window as unknown as { client: { publish(t: string, p: string, o: object): Promise<unknown> } }).client;
      await c.publish('browser/out', 'from the browser', { qos: 2 });
    });
    await sub.waitForLine(/^2 from the browser$/, 5_000);
    sub.kill();
    await screenshot(page, 'browser-client', 'round-trip');
    const closed = await page.evaluate(async () => {
      const c = (window as unknown as { client: { end(): Promise<void>; connected: boolean } }).client;
      await c.end();
      return !c.connected;
    });
    assert.equal(closed, true);
    await b.broker.waitForLog(/Received DISCONNECT from browser-bundle/, 5_000);
    await b.broker.waitForLog(/Client browser-bundle \[127\.0\.0\.1:\d+\] disconnected\./, 5_000);
    assert.deepEqual(errors, [], 'console errors in the page');
  });
});
