/**
 * Log lines in mosquitto's format: `<unix seconds>: <message>` on stderr.
 * With verbose (`-v`), one line per packet in and out, as `mosquitto -v` prints them.
 */
export interface LogSink { (line: string): void }

/**
 * Structured fields of a log line, for the JSON format (`midge_log_format json`); the mosquitto-style text
 * format ignores them (they are in the text already). Named as in the embedding API's ClientInfo.
 */
export interface LogFields {
  clientId?: string;
  remoteAddress?: string;
  remotePort?: number;
  /** the port of the listener the connection came in on */
  listenerPort?: number;
}

export class Logger {
  constructor(
    /** one line per packet received and sent (`mosquitto -v`) */
    public verbose = false,
    /** connect/disconnect lines (mosquitto's `connection_messages`) */
    public connectionMessages = true,
    private readonly sink: LogSink = defaultSink,
    public timestamps = true,
  ) {}

  /** notice/information: always printed */
  info(msg: string, _fields?: LogFields): void {
    this.sink(this.timestamps ? `${Math.floor(Date.now() / 1000)}: ${msg}` : msg);
  }

  /** per-packet lines: printed only with verbose */
  debug(msg: string, fields?: LogFields): void {
    if (this.verbose) this.info(msg, fields);
  }

  /** connection lines: printed unless connection_messages false */
  conn(msg: string, fields?: LogFields): void {
    if (this.connectionMessages || this.verbose) this.info(msg, fields);
  }

  /** whether `conn` lines are printed (to skip building one that would not be) */
  get connOn(): boolean { return this.connectionMessages || this.verbose; }

  warning(msg: string, fields?: LogFields): void { this.info(`Warning: ${msg}`, fields); }
  error(msg: string, fields?: LogFields): void { this.info(`Error: ${msg}`, fields); }
}

function defaultSink(line: string): void {
  process.stderr.write(line + '\n');
}

/** A logger that drops everything (embedding default). */
export const silentLogger = (): Logger => new Logger(false, false, () => {});
