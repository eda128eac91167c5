/**
 * The dashboard's console against a broker with `allow_anonymous false` and a password file, in headless
 * Chromium (Debian's, driven by playwright-core): the console's first, anonymous attempt is refused and the
 * page says so; a wrong password, an unknown user and a user name without a password are refused with a
 * clear message too; the right password connects, and the console then receives what a TCP client (the
 * project's library, logged in) publishes. The password field is type=password; no password is left in the
 * page, in localStorage or sessionStorage, in the browser's console or in the broker's log. Screenshots go to
 * test-artifacts/dashboard-login/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';
import { midgePasswd, tempDir } from '../auth/_helpers.js';
import { connect, type MqttClient } from '../../src/index.js';
import { startWsBroker, type WsBroker } from '../websockets/_ws.js';
import { launchChromium, recordErrors, screenshot, until } from './_browser.js';

const T = { timeout: 30_000 };
const SHOTS = 'dashboard-login';
const USER = 'console-user';
const PASSWORD = 'Pw-of-the-console-7f3a';
const WRONG = 'Wrong-password-91c2';

let dir: Awaited<ReturnType<typeof tempDir>>;
let b: WsBroker;
let http = '';
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];
/** every message of the page's console (all types), to look for passwords */
const consoleText: string[] = [];
let tcp: MqttClient | undefined;

before(async () => {
  dir = await tempDir('midge-dash-login-');
  const pw = `${dir.path}/passwd`;
  const r = await midgePasswd(['-c', '-b', pw, USER, PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  // no throttle of failed logins: the test makes four on purpose (the throttle has its own tests)
  b = await startWsBroker([[]], ['http_listener 0 127.0.0.1'], true, { head: ['allow_anonymous false', `password_file ${pw}`, 'midge_failed_login_delay 0'] });
  const line = await b.broker.waitForLog(/Opening http listen socket on /, 10_000);
  http = /on (http:\/\/\S+) /.exec(line)![1]!;
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  errors = recordErrors(page);
  page.on('console', (m) => consoleText.push(m.text()));
});

after(async () => {
  await tcp?.end({ force: true });
  await browser?.close();
  await stopAllBrokers();
  await killAll();
  await dir?.remove();
});

/** Fills the console's login form and submits it; resolves when the attempt has ended (refused or connected). */
async function login(user: string, password: string): Promise<void> {
  await page.fill('#mqtt-username', user);
  await page.fill('#mqtt-password', password);
  await page.click('#connect-button');
  await until('the login attempt to end', 10_000, async () => {
    const state = await page.$eval('#console', (s) => ({ connected: (s as HTMLElement).dataset.connected, refused: (s as HTMLElement).dataset.refused }));
    const busy = await page.$eval('#connect-button', (el) => (el as HTMLButtonElement).disabled);
    return !busy && (state.connected === 'true' || state.refused !== undefined) ? true : undefined;
  });
}

async function refusal(): Promise<string> {
  await page.waitForSelector('#console-refused:not([hidden])', { timeout: 5_000 });
  return (await page.textContent('#console-refused')) ?? '';
}

describe('the dashboard console with allow_anonymous false', () => {
  test('the anonymous attempt at load is refused and the page says so (CONNACK 5, asks for a login)', T, async () => {
    const r = await page.goto(http + '/', { waitUntil: 'load' });
    assert.equal(r?.status(), 200);
    const text = await refusal();
    assert.match(text, /refused the connection: Connection Refused: not authorised\. \(CONNACK code 5\)/);
    assert.match(text, /enter a user name and password/);
    assert.match((await page.textContent('#console-status')) ?? '', /refused by the broker \(CONNACK 5\)/);
    assert.equal(await page.getAttribute('#console', 'data-connected'), 'false');
    assert.equal(await page.getAttribute('#mqtt-password', 'type'), 'password');
    await b.broker.waitForLog(/not authori[sz]ed|bad user name or password/i, 5_000);
    await screenshot(page, SHOTS, '01-anonymous-refused');
  });

  test('a wrong password, an unknown user and a user name without a password are refused, with a clear message', T, async () => {
    for (const [user, password, shot] of [[USER, WRONG, '02-wrong-password'], ['no-such-user', PASSWORD, '03-unknown-user'], [USER, '', '04-no-password']] as const) {
      await login(user, password);
      const text = await refusal();
      assert.match(text, new RegExp(`refused the connection as user ${user}: Connection Refused: not authorised\\. \\(CONNACK code 5\\)`), `${user} / ${password === '' ? 'no password' : 'bad password'}`);
      assert.match(text, /Check the user name and password/);
      assert.equal(await page.getAttribute('#console', 'data-connected'), 'false');
      assert.equal(await page.inputValue('#mqtt-password'), '', 'the password field is emptied after each attempt');
      await screenshot(page, SHOTS, shot);
    }
    // nothing to subscribe with: the console stays quiet
    assert.equal(await page.$$eval('#console-log li', (l) => l.length), 0);
  });

  test('the right password connects; the console receives a message that a TCP client publishes', T, async () => {
    await login(USER, PASSWORD);
    await page.waitForSelector('#console-status.ok', { timeout: 5_000 });
    assert.match((await page.textContent('#console-status')) ?? '', new RegExp(`connected to ws://127\\.0\\.0\\.1:${b.wsPorts[0]}/mqtt as dashboard-[0-9a-f]+ \\(user ${USER}\\)`));
    assert.equal(await page.isHidden('#console-refused'), true, 'the refusal notice is gone');
    await page.fill('#sub-filter', 'dash/auth/#');
    await page.selectOption('#sub-qos', '1');
    await page.click('#subscribe-form button[type=submit]');
    await page.waitForSelector('#console-log li:has-text("subscribed to dash/auth/# (granted QoS 1)")', { timeout: 5_000 });
    tcp = await connect(`mqtt://127.0.0.1:${b.port}`, { clientId: 'dash-login-tcp', username: USER, password: PASSWORD, reconnect: false });
    await tcp.publish('dash/auth/x', 'hello to the logged-in console', { qos: 1 });
    await page.waitForSelector('#console-log li:has-text("dash/auth/x q1: hello to the logged-in console")', { timeout: 5_000 });
    await screenshot(page, SHOTS, '05-logged-in');
  });

  test('no password in the page, its storage, the browser console or the broker log; no console errors', T, async () => {
    const html = await page.content();
    const values = await page.$$eval('input', (ins) => ins.map((i) => (i as HTMLInputElement).value).join('\n'));
    const storage = await page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }));
    assert.equal(storage, '{"local":{},"session":{},"cookie":""}');
    for (const secret of [PASSWORD, WRONG]) {
      assert.ok(!html.includes(secret), 'a password in the page');
      assert.ok(!values.includes(secret), 'a password in an input');
      assert.ok(!consoleText.join('\n').includes(secret), 'a password in the browser console');
      assert.ok(!b.broker.logs().includes(secret), 'a password in the broker log');
    }
    assert.deepEqual(errors, [], 'console errors during the tests');
  });
});
