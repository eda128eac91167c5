/**
 * mosquitto.conf's logging keys applied to the broker's Logger: `log_type` (which levels), `log_dest`
 * (stdout, stderr, a file, none), `log_timestamp` and `connection_messages`. `-v` means `log_type all`.
 * The Midge-only `midge_log_format json` writes the same lines as JSON objects (pino), one a line, to every
 * destination, and `log_dest json stdout|stderr|file PATH` to that one only (the others keep their format): `time` (ISO 8601; none with `log_timestamp false`), `level` (error, warn, info, debug),
 * `msg` (the text of the mosquitto-style line, without its timestamp) and, where the call site gives them,
 * `clientId`, `remoteAddress`, `remotePort`, `listenerPort`.
 *
 * Midge's levels: error, warning, notice (notice and information are one level: `info` lines), debug
 * (one line per packet, what `mosquitto -v` prints).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { pino as Pino } from 'pino';
import { Logger, type LogFields } from '../broker/log.js';
import { shortenPath } from '../util/text.js';
import type { BrokerConfig } from './options.js';

export interface ConfiguredLogger {
  readonly logger: Logger;
  /** Reopens the log file (after log rotation; SIGHUP). Throws when it cannot be opened. */
  reopen(): void;
  close(): void;
}

type Level = 'error' | 'warn' | 'info' | 'debug';
/** Writes one line of a level: the mosquitto-style text or a JSON object. */
type Emit = (level: Level, msg: string, fields: LogFields | undefined) => void;

class LevelLogger extends Logger {
  constructor(
    private readonly levels: { error: boolean; warning: boolean; notice: boolean; debug: boolean },
    connectionMessages: boolean,
    private readonly emit: Emit,
    timestamps: boolean,
  ) {
    super(levels.debug, connectionMessages, () => {}, timestamps);
  }

  override info(msg: string, fields?: LogFields): void { if (this.levels.notice) this.emit('info', msg, fields); }
  override debug(msg: string, fields?: LogFields): void { if (this.levels.debug) this.emit('debug', msg, fields); }
  override conn(msg: string, fields?: LogFields): void {
    if ((this.connectionMessages && this.levels.notice) || this.levels.debug) this.emit(this.levels.notice ? 'info' : 'debug', msg, fields);
  }
  override warning(msg: string, fields?: LogFields): void { if (this.levels.warning) this.emit('warn', `Warning: ${msg}`, fields); }
  override error(msg: string, fields?: LogFields): void { if (this.levels.error) this.emit('error', `Error: ${msg}`, fields); }
}

/** The mosquitto-style line: `<unix seconds>: <message>` (or the message alone with log_timestamp false). */
function textEmit(write: (line: string) => void, timestamps: boolean): Emit {
  return (_level, msg) => write(timestamps ? `${Math.floor(Date.now() / 1000)}: ${msg}` : msg);
}

/** The JSON line, made by pino: {"level":"info","time":"...","pid":...,"hostname":"...","msg":"...",...fields}. */
function jsonEmit(write: (line: string) => void, timestamps: boolean): Emit {
  // loaded only for a JSON destination (pino and its dependencies take some 50 ms to load)
  const { pino } = createRequire(import.meta.url)('pino') as { pino: typeof Pino };
  const json = pino({
    level: 'debug',
    timestamp: timestamps ? pino.stdTimeFunctions.isoTime : false,
    formatters: { level: (label) => ({ level: label }) },
  }, { write: (line: string) => write(line.endsWith('\n') ? line.slice(0, -1) : line) });
  return (level, msg, fields) => {
    if (fields === undefined) json[level](msg);
    else json[level](fields, msg);
  };
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
  // each destination in its format: `log_dest json DEST` is JSON whatever midge_log_format says
  const dests = cfg.logDest.filter((d) => d !== 'none').map((d) => d.startsWith('json:')
    ? { format: 'json' as const, to: d.slice(5) }
    : { format: cfg.logFormat, to: d });
  const file = dests.find((d) => d.to.startsWith('file:'));
  let fd: number | undefined;
  const open = (): void => {
    if (file === undefined) return;
    const path = file.to.slice(5);
    let next: number;
    try {
      next = openSync(path, 'a', 0o640);
    } catch (err) {
      throw new Error(`Error: Unable to open log file ${shortenPath(path)} for writing (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
    }
    if (fd !== undefined) closeSync(fd);
    fd = next;
  };
  open();
  const writer = (format: string) => {
    const toStdout = dests.some((d) => d.format === format && d.to === 'stdout');
    const toStderr = dests.some((d) => d.format === format && d.to === 'stderr');
    const toFile = file !== undefined && file.format === format;
    return (line: string): void => {
      const text = `${line}\n`;
      if (toStderr) process.stderr.write(text);
      if (toStdout) process.stdout.write(text);
      if (toFile && fd !== undefined) {
        try { writeSync(fd, text); } catch { /* a full disk must not stop the broker */ }
      }
    };
  };
  const textOut = dests.some((d) => d.format !== 'json') ? textEmit(writer('mosquitto'), cfg.logTimestamp) : undefined;
  const jsonOut = dests.some((d) => d.format === 'json') ? jsonEmit(writer('json'), cfg.logTimestamp) : undefined;
  const emit: Emit = textOut !== undefined && jsonOut !== undefined
    ? (level, msg, fields) => { textOut(level, msg, fields); jsonOut(level, msg, fields); }
    : textOut ?? jsonOut ?? (() => undefined);
  const logger = new LevelLogger(levels, cfg.connectionMessages, emit, cfg.logTimestamp);
  return {
    logger,
    reopen: open,
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
