/**
 * Mosquitto password files, shared by the broker and `midge passwd` (like mosquitto's `password_mosq.c`).
 *
 * A file holds one `username:hash` entry a line; `#` comments and blank lines are allowed. Two hash
 * formats are read, byte for byte as mosquitto writes them:
 *
 *   $6$<salt b64>$<hash b64>               mosquitto 1.x: sha512(password || salt)
 *   $7$<iterations>$<salt b64>$<hash b64>  mosquitto 2.0: PBKDF2-HMAC-SHA512(password, salt, iterations, 64)
 *
 * with a 12-byte salt and a 64-byte hash (mosquitto refuses other lengths), in standard padded base64.
 * A plain-text password is never accepted: the entry is left out and a warning (line number and user,
 * never the password) is returned. Anything else that is not well formed is a `PasswordFileError`
 * naming the file and line.
 */
import { createHash, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { fileErrorText, shorten, shortenPath } from '../util/text.js';

const pbkdf2Async = promisify(pbkdf2);

/** mosquitto's PW_DEFAULT_ITERATIONS. */
export const DEFAULT_ITERATIONS = 101;
/** mosquitto's SALT_LEN. */
export const SALT_LENGTH = 12;
/** Length of a SHA-512 digest, the only hash length mosquitto accepts. */
export const HASH_LENGTH = 64;
/** Largest iteration count we accept from a file (mosquitto reads it with atoi into an int). */
export const MAX_ITERATIONS = 2_147_483_647;

export type HashType = 'sha512-pbkdf2' | 'sha512';

/** A decoded hash. `encoded` is the text after `username:`, exactly as it appears in the file. */
export type PasswordEntry =
  | {
      readonly type: 'sha512-pbkdf2';
      readonly iterations: number;
      readonly salt: Buffer;
      readonly hash: Buffer;
      readonly encoded: string;
    }
  | {
      readonly type: 'sha512';
      readonly salt: Buffer;
      readonly hash: Buffer;
      readonly encoded: string;
    };

/** A line the parser skipped. Never contains the password. */
export interface PasswordFileWarning {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface PasswordFile {
  /** Users in file order. */
  readonly users: Map<string, PasswordEntry>;
  readonly warnings: PasswordFileWarning[];
}

/** A hash string that is not a well-formed `$6$` or `$7$` entry. */
export class PasswordHashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A password file that cannot be used; `file` and `line` (1-based) say where. `line` is 0 when the file
 * cannot be read at all (`reason` then says why: `it is a directory (EISDIR)`).
 */
export class PasswordFileError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(line > 0 ? `${shortenPath(file)}:${line}: ${reason}` : `${shortenPath(file)}: ${reason}`);
    this.name = new.target.name;
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HASH_PREFIX = /^\$(\d+)\$/;

function decodeBase64(text: string, what: string, length: number): Buffer {
  if (text.length === 0 || !BASE64.test(text)) throw new PasswordHashError(`${what} is not valid base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length) {
    throw new PasswordHashError(`${what} is ${bytes.length} bytes, expected ${length}`);
  }
  return bytes;
}

/** True if `text` claims to be a hash (`$<digits>$...`), whether or not it is a well-formed one. */
export function looksHashed(text: string): boolean {
  return HASH_PREFIX.test(text);
}

/** Decodes `$6$salt$hash` or `$7$iterations$salt$hash`; throws `PasswordHashError`. */
export function parseHash(encoded: string): PasswordEntry {
  const m = HASH_PREFIX.exec(encoded);
  if (!m) throw new PasswordHashError('not a hashed password (expected $6$ or $7$)');
  const parts = encoded.split('$'); // ['', type, ...]
  if (m[1] === '7') {
    if (parts.length !== 5) throw new PasswordHashError('expected $7$<iterations>$<salt>$<hash>');
    const [, , iter = '', salt = '', hash = ''] = parts;
    if (!/^[1-9][0-9]*$/.test(iter) || Number(iter) > MAX_ITERATIONS) {
      throw new PasswordHashError(`invalid iteration count '${iter}'`);
    }
    return {
      type: 'sha512-pbkdf2',
      iterations: Number(iter),
      salt: decodeBase64(salt, 'salt', SALT_LENGTH),
      hash: decodeBase64(hash, 'hash', HASH_LENGTH),
      encoded,
    };
  }
  if (m[1] === '6') {
    if (parts.length !== 4) throw new PasswordHashError('expected $6$<salt>$<hash>');
    const [, , salt = '', hash = ''] = parts;
    return {
      type: 'sha512',
      salt: decodeBase64(salt, 'salt', SALT_LENGTH),
      hash: decodeBase64(hash, 'hash', HASH_LENGTH),
      encoded,
    };
  }
  throw new PasswordHashError(`unsupported hash type $${m[1]}$ (expected $6$ or $7$)`);
}

/** Splits a file into lines, dropping one trailing newline and any `\r` before a `\n`. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Classification of one line, shared with `midge passwd` (which edits files line by line). */
export type PasswordLine =
  | { readonly kind: 'blank' | 'comment'; readonly text: string }
  | { readonly kind: 'entry'; readonly text: string; readonly username: string; readonly password: string };

/**
 * Classifies a line as mosquitto does: comments start with `#`; otherwise the username is everything
 * before the first `:` and the password everything after it, both trimmed of blanks. Returns
 * `undefined` for a line with no `:` or an empty username or password (mosquitto: "corrupt").
 */
export function classifyLine(text: string): PasswordLine | undefined {
  if (text.trim() === '') return { kind: 'blank', text };
  if (text.trimStart().startsWith('#')) return { kind: 'comment', text };
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const username = text.slice(0, colon).trim();
  const password = text.slice(colon + 1).trim();
  if (username === '' || password === '') return undefined;
  return { kind: 'entry', text, username, password };
}

/**
 * Parses the text of a password file. `file` is used in errors and warnings only.
 * A user listed twice keeps the last entry (as mosquitto's hash table does) and adds a warning.
 */
export function parsePasswordFile(text: string, file = '<password file>'): PasswordFile {
  const users = new Map<string, PasswordEntry>();
  const seenAt = new Map<string, number>();
  const warnings: PasswordFileWarning[] = [];
  splitLines(text).forEach((raw, i) => {
    const line = i + 1;
    const parsed = classifyLine(raw);
    if (parsed === undefined) {
      const reason = raw.includes(':') ? 'empty username or password' : "expected 'username:hash'";
      throw new PasswordFileError(file, line, reason);
    }
    if (parsed.kind !== 'entry') return;
    const { username, password } = parsed;
    if (!looksHashed(password)) {
      warnings.push({
        file,
        line,
        message: `plain-text password for user '${shorten(username)}' ignored; hash the file with 'midge passwd -U'`,
      });
      return;
    }
    let entry: PasswordEntry;
    try {
      entry = parseHash(password);
    } catch (err) {
      const why = err instanceof PasswordHashError ? err.message : String(err);
      throw new PasswordFileError(file, line, `invalid password hash for user '${shorten(username)}': ${why}`);
    }
    const earlier = seenAt.get(username);
    if (earlier !== undefined) {
      warnings.push({ file, line, message: `user '${shorten(username)}' also defined at line ${earlier}; this entry wins` });
      users.delete(username); // re-insert so the map order follows the entry in use
    }
    seenAt.set(username, line);
    users.set(username, entry);
  });
  return { users, warnings };
}

/** Reads and parses a password file from disk; throws `PasswordFileError` (line 0 when it cannot be read). */
export async function loadPasswordFile(path: string): Promise<PasswordFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PasswordFileError(path, 0, fileErrorText(err));
  }
  return parsePasswordFile(text, path);
}

/** Writes users back as `username:hash` lines, in map order (mosquitto_passwd's output format). */
export function serialize(users: ReadonlyMap<string, PasswordEntry | string>): string {
  let out = '';
  for (const [username, entry] of users) {
    out += `${username}:${typeof entry === 'string' ? entry : entry.encoded}\n`;
  }
  return out;
}

export interface HashOptions {
  /** PBKDF2 iterations for `$7$` (default 101, like mosquitto_passwd). */
  readonly iterations?: number;
  /** `sha512-pbkdf2` (`$7$`, default) or `sha512` (`$6$`, mosquitto 1.x). */
  readonly type?: HashType;
  /** For tests: a fixed 12-byte salt instead of a random one. */
  readonly salt?: Uint8Array;
}

function toBytes(password: string | Uint8Array): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
}

async function digest(type: HashType, password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> {
  if (type === 'sha512') return createHash('sha512').update(password).update(salt).digest();
  return pbkdf2Async(password, salt, iterations, HASH_LENGTH, 'sha512');
}

/** Hashes a password into the text mosquitto_passwd writes after `username:`. */
export async function hashPassword(password: string | Uint8Array, options: HashOptions = {}): Promise<string> {
  const type = options.type ?? 'sha512-pbkdf2';
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError(`iterations must be an integer from 1 to ${MAX_ITERATIONS}`);
  }
  const salt = options.salt === undefined ? randomBytes(SALT_LENGTH) : Buffer.from(options.salt);
  if (salt.length !== SALT_LENGTH) throw new RangeError(`salt must be ${SALT_LENGTH} bytes`);
  const hash = await digest(type, toBytes(password), salt, iterations);
  const salt64 = salt.toString('base64');
  const hash64 = hash.toString('base64');
  return type === 'sha512' ? `$6$${salt64}$${hash64}` : `$7$${iterations}$${salt64}$${hash64}`;
}

/**
 * Checks a password against an entry (decoded or as text) in constant time. PBKDF2 runs on the
 * libuv thread pool, so the event loop is not blocked. A malformed text entry never verifies.
 */
export async function verifyPassword(entry: PasswordEntry | string, password: string | Uint8Array): Promise<boolean> {
  let e: PasswordEntry;
  try {
    e = typeof entry === 'string' ? parseHash(entry) : entry;
  } catch {
    return false;
  }
  const iterations = e.type === 'sha512-pbkdf2' ? e.iterations : 1;
  const actual = await digest(e.type, toBytes(password), e.salt, iterations);
  return actual.length === e.hash.length && timingSafeEqual(actual, e.hash);
}

const DUMMY_ENTRY: PasswordEntry = {
  type: 'sha512-pbkdf2',
  iterations: DEFAULT_ITERATIONS,
  salt: Buffer.alloc(SALT_LENGTH),
  hash: Buffer.alloc(HASH_LENGTH),
  encoded: '',
};

/**
 * The broker's check: the user exists and the password matches. An unknown user still costs one
 * default-strength hash, so response time does not tell which usernames exist.
 */
export async function checkPassword(
  users: ReadonlyMap<string, PasswordEntry>,
  username: string,
  password: string | Uint8Array,
): Promise<boolean> {
  const entry = users.get(username);
  if (entry === undefined) {
    await verifyPassword(DUMMY_ENTRY, password);
    return false;
  }
  return verifyPassword(entry, password);
}
