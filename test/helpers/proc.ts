/**
 * Child processes for tests: every wait is bounded, every process is tracked so that a test file's
 * `after()` (or, as a last resort, this process's exit) can kill what is still running.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

const live = new Set<ChildProcess>();

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Spawns with stdin/stdout/stderr piped and registers the child until it exits. */
export function spawnTracked(cmd: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  // A child that exits before reading its stdin makes writes to it fail (EPIPE): not the test's concern.
  child.stdin?.on('error', () => undefined);
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Resolves when the child has exited (or failed to start: then code is null and signal null). */
export function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode as NodeJS.Signals | null });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
}

/** SIGKILLs every tracked child that is still running and waits for each to exit. */
export async function killAll(): Promise<void> {
  const children = [...live];
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map(exitOf));
}

/** Bounded waits on changing state: `wait()` polls `attempt` now and on every `check()` until it yields a value. */
export class Waiters {
  private readonly pending = new Set<() => void>();

  /** Re-evaluates every pending wait; call after each change of the watched state. */
  check(): void {
    for (const w of [...this.pending]) w();
  }

  wait<T>(
    what: string,
    timeoutMs: number,
    attempt: () => T | undefined,
    describe: () => string,
    failed: () => string | undefined = () => undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pending.delete(poll);
      };
      const poll = (): void => {
        const value = attempt();
        if (value !== undefined) {
          done();
          resolve(value);
          return;
        }
        const why = failed();
        if (why !== undefined) {
          done();
          reject(new Error(`${what}: ${why}\n${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: timed out after ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      this.pending.add(poll);
      poll();
    });
  }
}

/** Runs a command to completion, bounded: after `timeoutMs` the child is killed and the promise rejects. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const child = spawnTracked(cmd, args, { env: opts.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  if (opts.input === undefined) child.stdin?.end();
  else child.stdin?.end(opts.input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${[cmd, ...args].join(' ')}: no exit within ${opts.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'close' (not 'exit') so that all output has been read.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface LineProcess {
  readonly pid: number;
  /** Complete stdout lines received so far (a trailing partial line is added when the process exits). */
  readonly lines: string[];
  stderr(): string;
  /** Resolves with the first `n` lines; rejects on timeout or when the process exits with fewer. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the first line (at index `from` or later) that matches. */
  waitForLine(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  kill(signal?: NodeJS.Signals): void;
  readonly exited: Promise<Exit>;
}

/** Spawns a long-running command and exposes its stdout line by line as it arrives. */
export function spawnLines(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): LineProcess {
  const child = spawnTracked(cmd, args, { env: opts.env ?? process.env });
  child.stdin?.end();
  const lines: string[] = [];
  const waiters = new Waiters();
  let partial = '';
  let stderr = '';
  let ended = false;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    waiters.check();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = exitOf(child);
  child.once('close', () => {
    if (partial !== '') lines.push(partial);
    partial = '';
    ended = true;
    waiters.check();
  });
  const describe = (): string =>
    `command: ${[cmd, ...args].join(' ')}\nstdout lines: ${JSON.stringify(lines)}\nstderr: ${stderr}`;
  const gone = (): string | undefined =>
    ended ? `the process exited (code ${String(child.exitCode)}, signal ${String(child.signalCode)})` : undefined;
  return {
    get pid() {
      return child.pid ?? -1;
    },
    lines,
    stderr: () => stderr,
    waitForLines: (n, timeoutMs = 5000) =>
      waiters.wait(`waiting for ${n} lines`, timeoutMs, () => (lines.length >= n ? lines.slice(0, n) : undefined), describe, gone),
    waitForLine: (re, timeoutMs = 5000, from = 0) =>
      waiters.wait(`waiting for a line matching ${String(re)}`, timeoutMs, () => lines.slice(from).find((l) => re.test(l)), describe, gone),
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    exited,
  };
}
