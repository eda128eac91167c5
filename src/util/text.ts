/** Text helpers for messages. */

/** How many characters of a value (a topic, a config value) an error message echoes. */
export const ECHO_MAX_CHARS = 100;
/** The same for a file path: long enough for any real path (mosquitto cuts its log lines at about 1 KB). */
export const PATH_ECHO_MAX_CHARS = 1024;

/**
 * A value as an error message may echo it: unchanged when short, else its first `max` characters and
 * its length, `aaaa... (70000 bytes)`, so that a 10 MB value does not make a 10 MB error line. The cut
 * never splits a surrogate pair. Bytes are counted in UTF-8.
 */
export function shorten(value: string, max = ECHO_MAX_CHARS): string {
  if (value.length <= max) return value;
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // do not cut a pair in two
  return `${value.slice(0, end)}... (${Buffer.byteLength(value, 'utf8')} bytes)`;
}

/** `shorten` for a file path: cut only when no real path is that long. */
export function shortenPath(path: string): string {
  return shorten(path, PATH_ECHO_MAX_CHARS);
}

const FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file', EISDIR: 'it is a directory', EACCES: 'permission denied', EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is not a directory', ENAMETOOLONG: 'the name is too long', ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files', EIO: 'input/output error',
};

/** Why a file could not be read, in words and with the error code: `it is a directory (EISDIR)`. */
export function fileErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === 'string') return FILE_ERRORS[e.code] !== undefined ? `${FILE_ERRORS[e.code]} (${e.code})` : e.code;
  return err instanceof Error ? err.message : String(err);
}
