/**
 * mosquitto.conf's logging keys applied to the broker's Logger: `log_type` (which levels), `log_dest`
 * (stdout, stderr, a file, none), `log_timestamp` and `connection_messages`. `-v` means `log_type all`.
 *
 * Midge's levels: error, warning, notice (notice and information are one level: `info` lines), debug
 * (one line per packet, what `mosquitto -v` prints).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Logger } from '../broker/log.js';
import { shortenPath } from '../util/text.js';
import type { BrokerConfig } from './options.js';

export interface ConfiguredLogger {
  readonly logger: Logger;
  /** Reopens the log file (after log rotation; SIGHUP). Throws when it cannot be opened. */
  reopen(): void;
  close(): void;
}

class LevelLogger extends Logger {
  constructor(
    private readonly levels: { error: boolean; warning: boolean; notice: boolean; debug: boolean },
    connectionMessages: boolean,
    private readonly write: (line: string) => void,
    timestamps: boolean,
  ) {
    super(levels.debug, connectionMessages, write, timestamps);
  }

  private emit(msg: string): void {
    this.write(this.timestamps ? `${Math.floor(Date.now() / 1000)}: ${msg}` : msg);
  }

  override info(msg: string): void { if (this.levels.notice) this.emit(msg); }
  override debug(msg: string): void { if (this.levels.debug) this.emit(msg); }
  override conn(msg: string): void { if ((this.connectionMessages && this.levels.notice) || this.levels.debug) this.emit(msg); }
  override warning(msg: string): void { if (this.levels.warning) this.emit(`Warning: ${msg}`); }
  override error(msg: string): void { if (this.levels.error) this.emit(`Error: ${msg}`); }
}

/** Builds the logger a config asks for. Throws when the log file cannot be opened. */
export function createConfiguredLogger(cfg: BrokerConfig, verbose: boolean): ConfiguredLogger {
  const types = new Set(verbose ? ['all'] : cfg.logTypes);
  const all = types.has('all');
  const has = (t: string): boolean => all || types.has(t);
  const levels = {
    error: has('error'), warning: has('warning'),
    notice: has('notice') || has('information'), debug: has('debug'),
  };
  const dests = cfg.logDest.filter((d) => d !== 'none');
  const file = dests.find((d) => d.startsWith('file:'))?.slice(5);
  const toStdout = dests.includes('stdout');
  const toStderr = dests.includes('stderr');
  let fd: number | undefined;
  const open = (): void => {
    if (file === undefined) return;
    let next: number;
    try {
      next = openSync(file, 'a', 0o640);
    } catch (err) {
      throw new Error(`Error: Unable to open log file ${shortenPath(file)} for writing (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
    if (fd !== undefined) closeSync(fd);
    fd = next;
  };
  open();
  const write = (line: string): void => {
    const text = `${line}\n`;
    if (toStderr) process.stderr.write(text);
    if (toStdout) process.stdout.write(text);
    if (fd !== undefined) {
      try { writeSync(fd, text); } catch { /* a full disk must not stop the broker */ }
    }
  };
  const logger = new LevelLogger(levels, cfg.connectionMessages, write, cfg.logTimestamp);
  return {
    logger,
    reopen: open,
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
