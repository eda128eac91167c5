/**
 * Command-line arguments as bytes. Node decodes `process.argv` as UTF-8 and turns every invalid byte
 * into U+FFFD, so `-t $'a\xff'` arrives as 'a\uFFFD' and would be published as such. mosquitto_pub
 * refuses it ("Error: Malformed UTF-8 in -t argument."); to do the same we need the bytes:
 *
 * - On Linux they are in /proc/self/cmdline: its last entries are the arguments after the command,
 *   which `rawArgs` returns when they decode to exactly the strings the command was given.
 * - Elsewhere, or when they cannot be matched (a command called from code), an argument that contains
 *   U+FFFD counts as malformed: the rare topic that really contains U+FFFD (bytes EF BF BD) is then
 *   refused too, rather than a malformed one published with a character the user never typed.
 */
import { readFileSync } from 'node:fs';

/** The bytes of each argument in `argv` (the arguments after the command), or undefined if unknown. */
export function rawArgs(argv: readonly string[]): Array<Buffer | undefined> | undefined {
  if (!argv.some((a) => a.includes('\uFFFD'))) return undefined; // nothing to check: skip the read
  let data: Buffer;
  try {
    data = readFileSync('/proc/self/cmdline');
  } catch {
    return undefined;
  }
  const parts: Buffer[] = [];
  for (let start = 0; start < data.length;) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    parts.push(data.subarray(start, end));
    start = end + 1;
  }
  if (parts.length < argv.length) return undefined;
  const tail = parts.slice(parts.length - argv.length);
  return tail.every((b, i) => b.toString('utf8') === argv[i]) ? tail : undefined;
}

/**
 * True when `value` was not valid UTF-8: it contains U+FFFD and its bytes (`raw`, when known) are not
 * the UTF-8 encoding of `value`.
 */
export function malformedUtf8(value: string, raw: Buffer | undefined): boolean {
  if (!value.includes('\uFFFD')) return false;
  return raw === undefined || !raw.equals(Buffer.from(value, 'utf8'));
}
