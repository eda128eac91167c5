/**
 * Helpers of the dashboard tests: a `midge broker` process with a TCP listener, a `protocol websockets`
 * listener and an `http_listener` on free 127.0.0.1 ports, and Debian's chromium (/usr/bin/chromium, which
 * scripts/setup.sh installs) driven by playwright-core, headless. No browser is ever downloaded: a missing
 * /usr/bin/chromium fails the tests with a message saying so.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startWsBroker } from '../websockets/_ws.js';
import type { BrokerProcess } from '../helpers/broker-process.js';

export const CHROMIUM = '/usr/bin/chromium';
/** test-artifacts/ at the repository's root (gitignored): screenshots */
export const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

export interface DashBroker {
  broker: BrokerProcess;
  /** the TCP listener */
  port: number;
  wsPort: number;
  /** e.g. http://127.0.0.1:40123 */
  http: string;
}

export async function startDashBroker(): Promise<DashBroker> {
  const b = await startWsBroker([[]], ['http_listener 0 127.0.0.1'], true, { head: ['allow_anonymous true'] });
  try {
    const line = await b.broker.waitForLog(/Opening http listen socket on /, 10_000);
    return { broker: b.broker, port: b.port, wsPort: b.wsPorts[0]!, http: /on (http:\/\/\S+) /.exec(line)![1]! };
  } catch (err) {
    await b.broker.stop();
    throw err;
  }
}

export async function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: the dashboard tests need Debian's chromium (scripts/setup.sh installs it: apt-get install -y chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true, timeout: 30_000 });
}

/** Every console error and uncaught page error of `page`, as text. */
export function recordErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

export async function screenshot(page: Page, dir: string, name: string): Promise<void> {
  const d = join(ARTIFACTS, dir);
  mkdirSync(d, { recursive: true });
  await page.screenshot({ path: join(d, `${name}.png`), fullPage: true });
}

/** Polls `check` every 100 ms until it returns a value other than undefined; fails after `ms`. */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Math.round(performance.now()) + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Math.round(performance.now()) > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
