/**
 * `midge passwd`: manage a password file, compatible with mosquitto_passwd 2.0 (same flags, messages
 * and exit codes; files are interchangeable). Differences, all on purpose:
 * - the file is replaced atomically (temp file + rename) and a new file gets mode 0600;
 * - `#` comments and blank lines are kept (mosquitto_passwd calls them corrupt; the broker allows them);
 * - a corrupt line stops every command with the file untouched (mosquitto_passwd may truncate it);
 * - `-U` leaves lines that are already hashed alone (mosquitto_passwd 2.0.11 hashes the hash);
 * - an empty username is refused.
 */
import { randomBytes } from 'node:crypto';
import { chown, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  classifyLine,
  DEFAULT_ITERATIONS,
  hashPassword,
  looksHashed,
  splitLines,
  type HashType,
} from '../auth/password-file.js';

/** Where the command talks to; tests may pass their own. */
export interface PasswdIo {
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  readonly stdout: Writable;
  readonly stderr: Writable;
}

const MAX_LENGTH = 65535;

const USAGE = `midge passwd is a tool for managing password files for midge and mosquitto.

Usage: midge passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] passwordfile username
       midge passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b passwordfile username password
       midge passwd -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
      Mosquitto 1.6 and earlier defaulted to sha512.
 -I : number of sha512-pbkdf2 iterations. Defaults to ${DEFAULT_ITERATIONS}.
 -U : update a plain text password file to use hashed passwords.

Files are interchangeable with mosquitto_passwd's.

`;

/** The C library's strerror() texts, which mosquitto_passwd prints. */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  ENOSPC: 'No space left on device',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EEXIST: 'File exists',
};

function strerror(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return (e.code !== undefined && STRERROR[e.code]) || (err instanceof Error ? err.message : String(err));
}

class Exit extends Error {
  constructor(readonly code: number, readonly text?: string) {
    super(text ?? `exit ${code}`);
  }
}

interface Options {
  batch: boolean;
  create: boolean;
  del: boolean;
  update: boolean;
  type: HashType;
  iterations: number;
  file: string;
  username?: string;
  password?: string;
}

/** Reads the flags exactly as mosquitto_passwd does: options first, stopping at the first other word. */
function parseArgs(argv: string[]): Options | 'usage' {
  const o = { batch: false, create: false, del: false, update: false, type: 'sha512-pbkdf2' as HashType };
  let iterations = DEFAULT_ITERATIONS;
  const n = argv.length;
  let i = 0;
  for (; i < n; i++) {
    const a = argv[i];
    if (a === '-H') {
      const v = argv[i + 1];
      if (v === undefined) throw new Exit(1, 'Error: -H argument given but not enough other arguments.');
      if (v === 'sha512') o.type = 'sha512';
      else if (v === 'sha512-pbkdf2') o.type = 'sha512-pbkdf2';
      else throw new Exit(1, `Error: Unknown hash type '${v}'`);
      i++;
    } else if (a === '-b') o.batch = true;
    else if (a === '-c') o.create = true;
    else if (a === '-D') o.del = true;
    else if (a === '-I') {
      const v = argv[i + 1];
      if (v === undefined) throw new Exit(1, 'Error: -I argument given but not enough other arguments.');
      iterations = Number.parseInt(v, 10) || 0; // atoi()
      i++;
      if (iterations < 1) throw new Exit(1, 'Error: Number of iterations must be > 0.');
    } else if (a === '-U') o.update = true;
    else break;
  }
  if (o.create && o.del) throw new Exit(1, 'Error: -c and -D cannot be used together.');
  if (o.create && o.update) throw new Exit(1, 'Error: -c and -U cannot be used together.');
  if (o.del && o.update) throw new Exit(1, 'Error: -D and -U cannot be used together.');
  if (o.del && o.batch) throw new Exit(1, 'Error: -b and -D cannot be used together.');
  const [file = '', username, password] = argv.slice(i);
  const base = { ...o, iterations, file };
  if (o.create) {
    if (o.batch && i + 2 >= n) {
      throw new Exit(1, 'Error: -c argument given but password file, username, or password missing.');
    }
    if (!o.batch && i + 1 >= n) throw new Exit(1, 'Error: -c argument given but password file or username missing.');
    return { ...base, username, password: o.batch ? password : undefined };
  }
  if (o.del) {
    if (i + 1 >= n) throw new Exit(1, 'Error: -D argument given but password file or username missing.');
    return { ...base, username };
  }
  if (o.update) {
    if (i + 1 !== n) throw new Exit(1, 'Error: -U argument given but password file missing.');
    return base;
  }
  if (o.batch && i + 3 === n) return { ...base, username, password };
  if (!o.batch && i + 2 === n) return { ...base, username };
  return 'usage';
}

function checkUsername(username: string | undefined): void {
  if (username === undefined) return;
  if (username.length > MAX_LENGTH) throw new Exit(1, 'Error: Username must be less than 65536 characters long.');
  if (/[\u0000-\u001f\u007f]/.test(username)) throw new Exit(1, 'Error: Username must not contain control characters.');
  if (username.includes(':')) throw new Exit(1, "Error: Username must not contain the ':' character.");
  if (username === '') throw new Exit(1, 'Error: Username must not be empty.');
}

/** Reads lines from a stream that is not a terminal; `undefined` at end of input. */
class LineReader {
  private buf = '';
  private ended = false;
  private waiter: (() => void) | undefined;
  constructor(private readonly input: Readable) {
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => { this.buf += chunk; this.wake(); });
    input.on('end', () => { this.ended = true; this.wake(); });
    input.on('error', () => { this.ended = true; this.wake(); });
  }
  private wake(): void { const w = this.waiter; this.waiter = undefined; w?.(); }
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl >= 0) { const line = this.buf.slice(0, nl); this.buf = this.buf.slice(nl + 1); return line; }
      if (this.ended) { const rest = this.buf; this.buf = ''; return rest === '' ? undefined : rest; }
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
  }
  close(): void { this.input.removeAllListeners('data'); this.input.pause(); }
}

/** Reads one line from a terminal with echo off. Ctrl-C leaves with status 0, as mosquitto_passwd does. */
function readQuiet(io: PasswdIo): Promise<string | undefined> {
  const { stdin } = io;
  stdin.setRawMode?.(true);
  stdin.setEncoding('utf8');
  let line = '';
  return new Promise((resolve) => {
    const done = (value: string | undefined): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(line);
        if (ch === '\u0003') { stdin.setRawMode?.(false); process.exit(0); }
        if (ch === '\u0004') return done(line === '' ? undefined : line);
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}

/** mosquitto's get_password(): prompt twice; 1 for an empty password, 2 when they differ. */
async function getPassword(io: PasswdIo): Promise<string> {
  const reader = io.stdin.isTTY ? undefined : new LineReader(io.stdin);
  const read = async (): Promise<string | undefined> => {
    const raw = reader ? await reader.next() : await readQuiet(io);
    return raw?.replace(/[\r\n]+$/, '');
  };
  try {
    io.stdout.write('Password: ');
    const pw1 = await read();
    if (!pw1) throw new Exit(1, 'Error: Empty password.');
    io.stdout.write('\nReenter password: ');
    const pw2 = await read();
    if (!pw2) throw new Exit(1, 'Error: Empty password.');
    io.stdout.write('\n');
    if (pw1 !== pw2) throw new Exit(2, 'Error: Passwords do not match.');
    return pw1;
  } finally {
    reader?.close();
  }
}

/** Replaces `path` atomically: a temp file in the same directory, fsync, rename. */
async function writeAtomic(path: string, text: string, existing: { mode: number; uid: number; gid: number } | undefined): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', existing ? existing.mode & 0o7777 : 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    if (existing) await fh.chmod(existing.mode & 0o7777); // the umask may have narrowed it
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  if (existing && process.getuid?.() === 0) await chown(tmp, existing.uid, existing.gid).catch(() => undefined);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try { return await stat(path); } catch { return undefined; }
}

async function execute(o: Options, io: PasswdIo): Promise<number> {
  const say = (text: string): void => { io.stderr.write(`${text}\n`); };
  checkUsername(o.username);
  if (o.password !== undefined && o.password.length > MAX_LENGTH) {
    throw new Exit(1, 'Error: Password must be less than 65536 characters long.');
  }
  let path: string;
  try {
    path = await realpath(o.file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Exit(1, `Error reading password file: ${strerror(err)}`);
    path = o.file;
  }
  const hash = (password: string): Promise<string> => hashPassword(password, { type: o.type, iterations: o.iterations });

  if (o.create) {
    const password = o.password ?? (await getPassword(io));
    const line = `${o.username ?? ''}:${await hash(password)}\n`;
    try {
      const st = await statOrUndefined(path);
      if (st?.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      await writeAtomic(path, line, st);
    } catch (err) {
      throw new Exit(1, `Error: Unable to open file ${path} for writing. ${strerror(err)}.`);
    }
    return 0;
  }

  let text: string;
  let st: Stats;
  try {
    st = await stat(path);
    text = await readFile(path, 'utf8');
    const fh = await open(path, 'r+'); // mosquitto_passwd needs to write the file too
    await fh.close();
  } catch (err) {
    throw new Exit(1, `Error: Unable to open password file ${path}. ${strerror(err)}.`);
  }
  const lines = splitLines(text);
  const out: string[] = [];
  let found = false;
  let corrupt = false;
  const password = o.del || o.update ? undefined : (o.password ?? (await getPassword(io)));
  for (const [i, raw] of lines.entries()) {
    const l = classifyLine(raw);
    if (l === undefined) {
      say(`Error: Corrupt password file at line ${i + 1}.`);
      corrupt = true;
      break;
    }
    if (l.kind !== 'entry') out.push(raw);
    else if (o.del) {
      if (l.username === o.username) found = true;
      else out.push(raw);
    } else if (o.update) {
      out.push(looksHashed(l.password) ? raw : `${l.username}:${await hash(l.password)}`);
    } else if (l.username === o.username && password !== undefined) {
      found = true;
      out.push(`${l.username}:${await hash(password)}`);
    } else out.push(raw);
  }
  if (o.del && !found) say(`Warning: User ${o.username ?? ''} not found in password file.`);
  if (corrupt || (o.del && !found)) return 1;
  if (!o.del && !o.update && !found && password !== undefined) out.push(`${o.username ?? ''}:${await hash(password)}`);
  try {
    await writeAtomic(path, out.map((l) => `${l}\n`).join(''), st);
  } catch (err) {
    throw new Exit(1, `Error occurred updating password file. ${strerror(err)}.`);
  }
  return 0;
}

export async function run(argv: string[], io: PasswdIo = process): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  try {
    const o = argv.length === 0 ? 'usage' : parseArgs(argv);
    if (o === 'usage') {
      io.stdout.write(USAGE);
      return 1;
    }
    return await execute(o, io);
  } catch (err) {
    if (!(err instanceof Exit)) throw err;
    if (err.text !== undefined) io.stderr.write(`${err.text}\n`);
    return err.code;
  }
}
