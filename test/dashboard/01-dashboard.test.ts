/**
 * The web dashboard in headless Chromium (Debian's, driven by playwright-core): it loads with no console
 * errors, shows a client connected over TCP, its message-rate chart moves when that client publishes, the
 * disconnect button disconnects it, the retained topic tree shows a value, and its console (MQTT over
 * WebSockets with the browser client bundle) receives what mosquitto_pub publishes over TCP and publishes to
 * a mosquitto_sub over TCP. Screenshots go to test-artifacts/dashboard/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll, spawnLines } from '../helpers/proc.js';
import { mosquittoPub, untilSubscribed } from '../interop/walkthrough.js';
import { connect, type MqttClient } from '../../src/index.js';
import { launchChromium, recordErrors, screenshot, startDashBroker, until, type DashBroker } from './_browser.js';

const T = { timeout: 30_000 };
const SHOTS = 'dashboard';

let b: DashBroker;
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];
let tcp: MqttClient | undefined;

before(async () => {
  b = await startDashBroker();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  errors = recordErrors(page);
});

after(async () => {
  await tcp?.end({ force: true });
  await browser?.close();
  await stopAllBrokers();
  await killAll();
});

async function dataNumber(selector: string, attr: string): Promise<number> {
  const v = await page.getAttribute(selector, attr);
  return v === null ? NaN : Number(v);
}

/** The pixels of a canvas, as a data URL (changes when the chart is redrawn with other data). */
function pixels(id: string): Promise<string> {
  return page.$eval(`#${id}`, (c) => (c as HTMLCanvasElement).toDataURL());
}

describe('the dashboard in headless Chromium', () => {
  test('loads from / with no console errors, charts updating and the console connected over WebSockets', T, async () => {
    const r = await page.goto(b.http + '/', { waitUntil: 'load' });
    assert.equal(r?.status(), 200);
    assert.equal(await page.title(), 'Midge dashboard');
    await page.waitForSelector('#console-status.ok', { timeout: 10_000 });
    assert.match((await page.textContent('#console-status')) ?? '', new RegExp(`ws://127\\.0\\.0\\.1:${b.wsPort}/mqtt`));
    await until('two chart updates', 10_000, async () => ((await dataNumber('#chart-messages', 'data-updates')) >= 2 ? true : undefined));
    assert.match((await page.textContent('#broker-info')) ?? '', /version \S+ · up \d+ s/);
    await screenshot(page, SHOTS, '01-loaded');
    assert.deepEqual(errors, [], 'console errors while loading');
    // the page's own client, connected over WebSockets, is in the broker's client list
    const text = (await page.textContent('#console-status')) ?? '';
    const id = /as (dashboard-[0-9a-f]+)/.exec(text)?.[1];
    assert.ok(id, text);
    await page.waitForSelector(`tr[data-client-id="${id}"]`, { timeout: 5_000 });
  });

  test('shows a client that the test connected over TCP, and the search filters the table', T, async () => {
    tcp = await connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'dash-tcp-client', reconnect: false });
    await page.waitForSelector('tr[data-client-id="dash-tcp-client"]', { timeout: 5_000 });
    const row = (await page.textContent('tr[data-client-id="dash-tcp-client"]')) ?? '';
    assert.match(row, /127\.0\.0\.1:\d+/);
    assert.match(row, /3\.1\.1/);
    await page.fill('#client-search', 'dash-tcp');
    await until('the table filtered to one row', 5_000, async () => {
      const ids = await page.$$eval('#clients-body tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.clientId));
      return ids.length === 1 && ids[0] === 'dash-tcp-client' ? true : undefined;
    });
    await screenshot(page, SHOTS, '02-client-search');
    await page.fill('#client-search', '');
  });

  test('the message-rate chart moves when the TCP client publishes', T, async () => {
    assert.ok(tcp);
    const before = await pixels('chart-messages');
    const sumBefore = await dataNumber('#chart-messages', 'data-sum-a');
    // 3 s of publishing, 40 messages every 100 ms
    const end = Math.round(performance.now()) + 3_000;
    while (Math.round(performance.now()) < end) {
      for (let i = 0; i < 40; i++) void tcp.publish('dash/rate', `m${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const sum = await until('messages/s in the chart', 5_000, async () => {
      const s = await dataNumber('#chart-messages', 'data-sum-a');
      return s >= sumBefore + 500 ? s : undefined;
    });
    assert.ok(sum > sumBefore, `${sum} > ${sumBefore}`);
    assert.ok((await dataNumber('#chart-messages', 'data-last-a')) >= 0);
    assert.notEqual(await pixels('chart-messages'), before, 'the canvas was redrawn with other pixels');
    assert.ok((await dataNumber('#chart-bytes', 'data-sum-a')) > 0, 'bytes in moved too');
    await screenshot(page, SHOTS, '03-message-rate');
  });

  test('the retained topic tree shows a retained value', T, async () => {
    await mosquittoPub(b.port, ['-t', 'dash/tree/leaf', '-m', 'retained-value-42', '-r']);
    await page.click('#topics-refresh');
    const li = 'li[data-topic="dash/tree/leaf"] > .payload';
    await page.waitForSelector(li, { timeout: 5_000 });
    assert.equal(await page.textContent(li), 'retained-value-42');
    await screenshot(page, SHOTS, '04-topic-tree');
  });

  test('the console receives a message that mosquitto_pub publishes over TCP', T, async () => {
    await page.fill('#sub-filter', 'dash/in/#');
    await page.selectOption('#sub-qos', '1');
    await page.click('#subscribe-form button[type=submit]');
    await page.waitForSelector('#console-log li:has-text("subscribed to dash/in/# (granted QoS 1)")', { timeout: 5_000 });
    await mosquittoPub(b.port, ['-t', 'dash/in/x', '-m', 'hello from tcp', '-q', '1']);
    await page.waitForSelector('#console-log li:has-text("dash/in/x q1: hello from tcp")', { timeout: 5_000 });
    await screenshot(page, SHOTS, '05-console-in');
  });

  test('a message published from the console reaches a TCP subscriber (mosquitto_sub)', T, async () => {
    const sub = spawnLines('mosquitto_sub', ['-p', String(b.port), '-t', 'dash/out', '-F', '%t %p']);
    await untilSubscribed(b.port, sub, 'dash/out');
    await page.fill('#pub-topic', 'dash/out');
    await page.fill('#pub-payload', 'hello from the page');
    await page.selectOption('#pub-qos', '1');
    await page.click('#publish-form button[type=submit]');
    await sub.waitForLine(/^dash\/out hello from the page$/, 5_000);
    sub.kill();
    await page.waitForSelector('#console-log li:has-text("published to dash/out")', { timeout: 5_000 });
    await screenshot(page, SHOTS, '06-console-out');
  });

  test('the disconnect button disconnects the TCP client', T, async () => {
    assert.ok(tcp);
    const client = tcp;
    const offline = new Promise<void>((resolve) => client.once('offline', () => resolve()));
    const row = 'tr[data-client-id="dash-tcp-client"]';
    await page.click(`${row} button.disconnect`);
    await Promise.race([offline, new Promise((_, reject) => setTimeout(() => reject(new Error('the client was not disconnected within 5 s')), 5_000))]);
    assert.equal(client.connected, false);
    await page.waitForSelector(row, { state: 'detached', timeout: 5_000 });
    await b.broker.waitForLog(/Client dash-tcp-client\b.*disconnected by an administrator\./, 2_000);
    await screenshot(page, SHOTS, '07-disconnected');
    assert.deepEqual(errors, [], 'console errors during the tests');
  });
});
