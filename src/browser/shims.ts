/**
 * Globals the client's code uses in Node, for the browser bundle (esbuild `inject`): Buffer, and
 * process.nextTick; setTimeout / clearTimeout return a handle with unref() as Node's do.
 */
import { Buffer } from 'buffer';

const nativeSetTimeout = globalThis.setTimeout.bind(globalThis);
const nativeClearTimeout = globalThis.clearTimeout.bind(globalThis);

class Timer {
  constructor(readonly id: ReturnType<typeof nativeSetTimeout>) {}
  unref(): this { return this; }
  ref(): this { return this; }
  hasRef(): boolean { return true; }
  [Symbol.toPrimitive](): number { return this.id as unknown as number; }
}

function setTimeoutShim(fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): Timer {
  return new Timer(nativeSetTimeout(fn, ms, ...args));
}

function clearTimeoutShim(t: Timer | number | undefined): void {
  if (t === undefined || t === null) return;
  nativeClearTimeout(t instanceof Timer ? t.id : t);
}

const process = {
  nextTick(fn: (...args: unknown[]) => void, ...args: unknown[]): void { queueMicrotask(() => fn(...args)); },
  env: {} as Record<string, string | undefined>,
};

export { Buffer, process, setTimeoutShim as setTimeout, clearTimeoutShim as clearTimeout };

// the codec calls Node's utf8Slice / utf8Write (faster there); the polyfill has toString / write
interface Utf8Methods {
  utf8Slice(start: number, end: number): string;
  utf8Write(s: string, offset: number, length?: number): number;
}
const proto = Buffer.prototype as unknown as Utf8Methods & Buffer;
if (typeof proto.utf8Slice !== 'function') {
  proto.utf8Slice = function utf8Slice(this: Buffer, start: number, end: number): string { return this.toString('utf8', start, end); };
}
if (typeof proto.utf8Write !== 'function') {
  proto.utf8Write = function utf8Write(this: Buffer, s: string, offset: number, length?: number): number {
    return length === undefined ? this.write(s, offset, 'utf8') : this.write(s, offset, length, 'utf8');
  };
}
