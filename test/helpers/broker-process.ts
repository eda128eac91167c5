/**
 * Starts a broker process on a free port of 127.0.0.1 for integration tests: Midge's own
 * (`node dist/src/cli/main.js broker`) or Debian's mosquitto, chosen by MIDGE_TEST_BROKER=midge|mosquitto.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { accepts, freePort } from './ports.js';
import { exitOf, spawnTracked, Waiters, type Exit } from './proc.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

export interface BrokerProcess {
  port: number;
  pid: number;
  /** Everything the process wrote to stderr and stdout so far. */
  logs(): string;
  /** Resolves with the first log line (from the start of the logs) that matches `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, wait for the exit; SIGKILL after 3 s. */
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  /** Whether the process is still running (it neither exited nor failed to start). */
  running(): boolean;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<Exit>;
}

export interface BrokerOptions {
  /** Config file contents. `{port}` is replaced by the chosen port; `listener PORT 127.0.0.1` and
   * `allow_anonymous true` are added when the text has no `listener` / `allow_anonymous` line. */
  config?: string;
  verbose?: boolean;
  /** listen on this port instead of a free one (to restart a broker where it was) */
  port?: number;
}

export interface MidgeOptions extends BrokerOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

export type BrokerKind = 'midge' | 'mosquitto';

export const brokerKind: BrokerKind = parseKind(process.env.MIDGE_TEST_BROKER);

function parseKind(value: string | undefined): BrokerKind {
  if (value === undefined || value === '' || value === 'midge') return 'midge';
  if (value === 'mosquitto') return 'mosquitto';
  throw new Error(`MIDGE_TEST_BROKER must be 'midge' or 'mosquitto', not '${value}'`);
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
/** Midge's CLI entry point (compiled) and Debian's mosquitto, for tests that spawn them by hand. */
export const MIDGE_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const MOSQUITTO = '/usr/sbin/mosquitto';

const running = new Set<BrokerProcess>();

/** Stops every broker started by this process that is still running (for `after()`). */
export async function stopAllBrokers(): Promise<void> {
  await Promise.all([...running].map((b) => b.stop()));
}

/** The broker under test, chosen by MIDGE_TEST_BROKER. */
export function startBroker(opts: BrokerOptions = {}): Promise<BrokerProcess> {
  return brokerKind === 'mosquitto' ? startMosquitto(opts) : startMidge(opts);
}

export function startMidge(opts: MidgeOptions = {}): Promise<BrokerProcess> {
  return startOnFreePort(opts.port, (port, dir) => {
    // as the `midge` bin starts it (src/cli/node-flags.ts)
    const args = [...NODE_FLAGS, MIDGE_MAIN, 'broker'];
    if (opts.config === undefined) args.push('-p', String(port));
    else args.push('-c', writeConfig(dir, opts.config, port));
    if (opts.verbose === true) args.push('-v');
    args.push(...(opts.args ?? []));
    return spawnTracked(process.execPath, args, { env: opts.env ?? process.env });
  });
}

export function startMosquitto(opts: BrokerOptions = {}): Promise<BrokerProcess> {
  return startOnFreePort(opts.port, (port, dir) => {
    const args = ['-c', writeConfig(dir, opts.config ?? '', port)];
    if (opts.verbose === true) args.push('-v');
    return spawnTracked(MOSQUITTO, args);
  });
}

function writeConfig(dir: string, text: string, port: number): string {
  let conf = text.replaceAll('{port}', String(port));
  if (!/^\s*allow_anonymous\s/m.test(conf)) conf = `allow_anonymous true\n${conf}`;
  if (!/^\s*listener\s/m.test(conf)) conf = `listener ${port} 127.0.0.1\n${conf}`;
  const file = join(dir, 'broker.conf');
  writeFileSync(file, conf.endsWith('\n') ? conf : `${conf}\n`, { mode: 0o644 });
  return file;
}

/** Picks a port and starts; when the port was taken meanwhile (the process dies saying so), tries again. */
async function startOnFreePort(fixed: number | undefined, spawnOn: (port: number, dir: string) => ChildProcess): Promise<BrokerProcess> {
  if (fixed !== undefined) return launch(fixed, spawnOn);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await launch(port, spawnOn);
    } catch (err) {
      const inUse = err instanceof Error && /in use|EADDRINUSE/i.test(err.message);
      if (!inUse || attempt >= 3) throw err;
    }
  }
}

async function launch(port: number, spawnOn: (port: number, dir: string) => ChildProcess): Promise<BrokerProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-test-'));
  const child = spawnOn(port, dir);
  let output = '';
  const waiters = new Waiters();
  const append = (s: string): void => {
    output += s;
    waiters.check();
  };
  child.stdout?.setEncoding('utf8').on('data', append);
  child.stderr?.setEncoding('utf8').on('data', append);
  child.stdin?.end();
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exited = exitOf(child).then((e) => {
    rmSync(dir, { recursive: true, force: true });
    waiters.check();
    return e;
  });
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null && spawnError === undefined;
  const describe = (): string => `broker logs:\n${output}`;

  const broker: BrokerProcess = {
    port,
    pid: child.pid ?? -1,
    logs: () => output,
    waitForLog: (re, timeoutMs = 5000) =>
      waiters.wait(
        `waiting for broker log ${String(re)}`,
        timeoutMs,
        () => output.split('\n').find((l) => re.test(l)),
        describe,
        () => (isRunning() ? undefined : 'the broker exited'),
      ),
    stop: async () => {
      if (isRunning()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await exited;
      running.delete(broker);
    },
    kill: (signal) => {
      if (isRunning()) child.kill(signal);
    },
    running: isRunning,
    exited,
  };
  running.add(broker);

  const deadline = Math.round(performance.now()) + READY_TIMEOUT_MS;
  for (;;) {
    if (!isRunning()) {
      await exited;
      running.delete(broker);
      const why = spawnError?.message ?? `exit code ${String(child.exitCode)}, signal ${String(child.signalCode)}`;
      throw new Error(`broker exited before accepting connections on port ${port} (${why})\n${describe()}`);
    }
    if (await accepts(port)) return broker;
    if (Math.round(performance.now()) > deadline) {
      await broker.stop();
      throw new Error(`broker did not accept connections on port ${port} within ${READY_TIMEOUT_MS} ms\n${describe()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
