/**
 * Reading the message(s) of `midge pub` / `midge rr`: a file (`-f`), all of stdin (`-s`) or stdin line by
 * line (`-l`), in linear time and never holding more than one MQTT payload.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { shortenPath } from '../util/text.js';

/** The largest payload MQTT can carry (the largest remaining length, 268435455 bytes). */
export const MAX_PAYLOAD = 268_435_455;

/**
 * Splits a byte stream into lines ('\n', which is not part of the line) in linear time: the chunks of an
 * unfinished line are kept in a list and joined once when its '\n' comes, and only the new chunk is
 * searched for '\n'. A line longer than `maxLine` bytes is refused as soon as it is that long, so no
 * more than `maxLine` bytes are ever held.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly onLine: (line: Buffer) => void, readonly maxLine = MAX_PAYLOAD) {}

  /** Feeds a chunk. Returns false when a line is longer than `maxLine` (what is held is dropped). */
  push(chunk: Buffer): boolean {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      if (this.size + piece.length > this.maxLine) return this.fail();
      this.onLine(this.take(piece));
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.size + rest.length > this.maxLine) return this.fail();
      this.parts.push(rest);
      this.size += rest.length;
    }
    return true;
  }

  /** End of input: the last line, when it has no '\n' (an empty one is not a line). */
  end(): void {
    if (this.size > 0) this.onLine(this.take(Buffer.alloc(0)));
  }

  /** The held part of the line followed by `piece`, and an empty hold. */
  private take(piece: Buffer): Buffer {
    if (this.parts.length === 0) return piece;
    const line = piece.length === 0 && this.parts.length === 1 ? this.parts[0]! : Buffer.concat([...this.parts, piece], this.size + piece.length);
    this.parts = [];
    this.size = 0;
    return line;
  }

  private fail(): false {
    this.parts = [];
    this.size = 0;
    return false;
  }
}

/** Input longer than the limit. */
export class InputTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`input longer than ${limit} bytes`);
    this.name = 'InputTooLongError';
  }
}

/**
 * All of a stream (`-s`). Rejects with InputTooLongError once it is longer than `limit` bytes, and
 * closes the stream then.
 */
export function readAll(stream: Readable, limit = MAX_PAYLOAD): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        stream.off('data', onData);
        stream.destroy();
        chunks.length = 0;
        reject(new InputTooLongError(limit));
        return;
      }
      chunks.push(c);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
}

/** The message of -f (mosquitto's texts when the file cannot be read or is too big), or an error text. */
export function readMessageFile(file: string): Buffer | string {
  const failed = `Error loading input file "${shortenPath(file)}".\n`;
  try {
    // a regular file's size is known before reading it; a pipe or device is checked once read
    const st = statSync(file);
    if (st.isFile() && st.size > MAX_PAYLOAD) return `Error: File must be less than ${MAX_PAYLOAD} bytes.\n\n${failed}`;
    const data = readFileSync(file);
    if (data.length > MAX_PAYLOAD) return `Error: File must be less than ${MAX_PAYLOAD} bytes.\n\n${failed}`;
    return data;
  } catch {
    return `Error: Unable to open file "${shortenPath(file)}".\n${failed}`;
  }
}

/** The message of -s: all of stdin, or mosquitto's texts when it is too long. */
export async function readMessageStdin(): Promise<Buffer | string> {
  try {
    return await readAll(process.stdin);
  } catch (e) {
    if (e instanceof InputTooLongError) return `Error: Message length must be less than ${MAX_PAYLOAD} bytes.\n\nError loading input from stdin.\n`;
    return `Error: Unable to read stdin: ${e instanceof Error ? e.message : String(e)}\nError loading input from stdin.\n`;
  }
}
