/** `node:crypto`'s randomBytes for the browser bundle (client ids), over crypto.getRandomValues. */
import { Buffer } from 'buffer';

export function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}
