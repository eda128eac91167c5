/**
 * Secrets out of a configuration before it is shown (GET /api/v1/config): values under a key that
 * names a secret (password, secret, token, passphrase, a TLS key, certificate, CA or CRL given as
 * contents) become "***"; file paths (keys ending in `file`, `path` or `dir`) are shown; Buffers are
 * never shown; functions are left out.
 */
const SECRET = /pass(word|wd|phrase)?|secret|token|credential|^(key|cert|ca|crl|pfx)$|private/i;
const PATH = /(file|path|dir|location)$/i;

export const MASK = '***';

export function maskSecrets(value: unknown, key = ''): unknown {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (key !== '' && SECRET.test(key) && !PATH.test(key)) return value === null ? null : MASK;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return MASK;
  if (Array.isArray(value)) return value.map((v) => maskSecrets(v));
  if (value !== null && typeof value === 'object') {
    if (value instanceof Map) return maskSecrets(Object.fromEntries(value));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const m = maskSecrets(v, k);
      if (m !== undefined) out[k] = m;
    }
    return out;
  }
  return value;
}
