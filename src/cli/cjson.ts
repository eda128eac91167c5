/**
 * JSON the way mosquitto_sub's cJSON reads and prints it, for `-F %j/%J` byte for byte: objects keep
 * repeated keys and their order, strings are raw bytes (escapes only below 0x20, '"' and '\'),
 * numbers print with C's "%1.15g" (or "%1.17g" when that does not read back), infinities as null,
 * and --pretty uses cJSON's layout (tabs, ":\t", arrays on one line with ", ").
 */

export type JNode =
  | { t: 'null' } | { t: 'bool'; v: boolean } | { t: 'num'; v: number } | { t: 'str'; v: Buffer }
  | { t: 'arr'; items: JNode[] } | { t: 'obj'; members: Array<[Buffer, JNode]> };

export const jstr = (v: string | Buffer): JNode => ({ t: 'str', v: typeof v === 'string' ? Buffer.from(v, 'utf8') : v });
export const jnum = (v: number): JNode => ({ t: 'num', v });
export const jobj = (members: Array<[string, JNode]>): JNode => ({ t: 'obj', members: members.map(([k, v]) => [Buffer.from(k, 'utf8'), v]) });

const NAMED: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x08: 'b', 0x0c: 'f', 0x0a: 'n', 0x0d: 'r', 0x09: 't' };

function quote(bytes: Buffer): Buffer {
  const out: number[] = [0x22];
  for (const b of bytes) {
    const esc = NAMED[b];
    if (esc !== undefined) out.push(0x5c, esc.charCodeAt(0));
    else if (b < 0x20) out.push(...Buffer.from(`\\u${b.toString(16).padStart(4, '0')}`));
    else out.push(b);
  }
  out.push(0x22);
  return Buffer.from(out);
}

/** C printf "%1.<p>g". */
function formatG(d: number, p: number): string {
  if (d === 0) return Object.is(d, -0) ? '-0' : '0';
  const [mantissa, expText] = d.toExponential(p - 1).split('e');
  const exp = Number(expText);
  const strip = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= p) return `${strip(mantissa!)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return strip(d.toFixed(Math.max(0, p - 1 - exp)));
}

function number(d: number): string {
  if (!Number.isFinite(d)) return 'null';
  const s = formatG(d, 15);
  return Number(s) === d ? s : formatG(d, 17);
}

export function printJson(node: JNode, pretty: boolean, depth = 1): Buffer {
  switch (node.t) {
    case 'null': return Buffer.from('null');
    case 'bool': return Buffer.from(node.v ? 'true' : 'false');
    case 'num': return Buffer.from(number(node.v));
    case 'str': return quote(node.v);
    case 'arr': {
      const parts = node.items.map((i) => printJson(i, pretty, depth + 1));
      const sep = Buffer.from(pretty ? ', ' : ',');
      return Buffer.concat([Buffer.from('['), ...parts.flatMap((p, i) => (i ? [sep, p] : [p])), Buffer.from(']')]);
    }
    case 'obj': {
      if (!pretty) {
        const parts = node.members.map(([k, v]) => Buffer.concat([quote(k), Buffer.from(':'), printJson(v, false)]));
        return Buffer.concat([Buffer.from('{'), ...parts.flatMap((p, i) => (i ? [Buffer.from(','), p] : [p])), Buffer.from('}')]);
      }
      const tabs = '\t'.repeat(depth);
      const parts = node.members.map(([k, v], i) => Buffer.concat([
        Buffer.from(tabs), quote(k), Buffer.from(':\t'), printJson(v, true, depth + 1), Buffer.from(i < node.members.length - 1 ? ',\n' : '\n'),
      ]));
      return Buffer.concat([Buffer.from('{\n'), ...parts, Buffer.from(`${'\t'.repeat(depth - 1)}}`)]);
    }
  }
}

/** cJSON_Parse of the whole text (surrounding whitespace allowed); undefined when it is not JSON. */
export function parseJson(text: Buffer): JNode | undefined {
  let i = 0;
  const ws = (): void => { while (i < text.length && (text[i] === 0x20 || text[i] === 0x09 || text[i] === 0x0a || text[i] === 0x0d)) i++; };
  const fail = (): never => { throw new SyntaxError('not JSON'); };
  const lit = (word: string, node: JNode): JNode => {
    if (text.toString('latin1', i, i + word.length) !== word) fail();
    i += word.length;
    return node;
  };
  const str = (): Buffer => {
    i++;
    const out: number[] = [];
    for (;;) {
      if (i >= text.length) fail();
      const b = text[i++]!;
      if (b === 0x22) return Buffer.from(out);
      if (b !== 0x5c) { out.push(b); continue; }
      const e = String.fromCharCode(text[i++] ?? 0);
      const simple: Record<string, number> = { '"': 0x22, '\\': 0x5c, '/': 0x2f, b: 8, f: 12, n: 10, r: 13, t: 9 };
      if (simple[e] !== undefined) { out.push(simple[e]); continue; }
      if (e !== 'u') fail();
      const hex = (): number => {
        const h = text.toString('latin1', i, i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) fail();
        i += 4;
        return parseInt(h, 16);
      };
      let cp = hex();
      if (cp >= 0xd800 && cp <= 0xdbff && text[i] === 0x5c && text[i + 1] === 0x75) {
        i += 2;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (hex() - 0xdc00);
      }
      out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
    }
  };
  const value = (): JNode => {
    ws();
    const c = text[i];
    if (c === 0x7b) {
      i++;
      const members: Array<[Buffer, JNode]> = [];
      ws();
      if (text[i] === 0x7d) { i++; return { t: 'obj', members }; }
      for (;;) {
        ws();
        if (text[i] !== 0x22) fail();
        const k = str();
        ws();
        if (text[i++] !== 0x3a) fail();
        members.push([k, value()]);
        ws();
        const n = text[i++];
        if (n === 0x7d) return { t: 'obj', members };
        if (n !== 0x2c) fail();
      }
    }
    if (c === 0x5b) {
      i++;
      const items: JNode[] = [];
      ws();
      if (text[i] === 0x5d) { i++; return { t: 'arr', items }; }
      for (;;) {
        items.push(value());
        ws();
        const n = text[i++];
        if (n === 0x5d) return { t: 'arr', items };
        if (n !== 0x2c) fail();
      }
    }
    if (c === 0x22) return { t: 'str', v: str() };
    if (c === 0x74) return lit('true', { t: 'bool', v: true });
    if (c === 0x66) return lit('false', { t: 'bool', v: false });
    if (c === 0x6e) return lit('null', { t: 'null' });
    // cJSON: a number starts with '-' or a digit, takes the run of [0-9+-.eE] and keeps what strtod reads of it
    if (c !== 0x2d && !(c! >= 0x30 && c! <= 0x39)) fail();
    const run = /^[0-9+\-eE.]*/.exec(text.toString('latin1', i, i + 400))![0];
    const m = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(run);
    if (!m) fail();
    i += m![0].length;
    return { t: 'num', v: Number(m![0]) };
  };
  try {
    const v = value();
    ws();
    return i === text.length ? v : undefined;
  } catch {
    return undefined;
  }
}
