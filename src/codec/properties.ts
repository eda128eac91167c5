/**
 * MQTT 5.0 properties (spec 2.2.2), decoded and encoded from the one table in constants.ts.
 *
 * Decode: an identifier that is unknown or not allowed in the packet, or a value that does not fit,
 * is a MalformedPacketError (5.0 section 2.2.2.2); a repeated single-valued property, a 0/1 flag with
 * another value, receiveMaximum / maximumPacketSize / subscriptionIdentifier 0 are ProtocolErrors.
 * Encode: properties are written in identifier order; a value that could not be decoded back is a
 * CodecError. Packets without properties decode with `properties` absent.
 */
import { MAX_VARINT, PROPERTIES, PROPERTY_BY_ID, WILL, type PropertyDef } from './constants.js';
import { CodecError, MalformedPacketError, ProtocolError } from './errors.js';
import type { Reader } from './reader.js';
import type { Properties } from './types.js';
import { binarySize, checkInt, utf8Size, varintSize, type Writer } from './writer.js';

export { WILL };

/** Where properties are read or written: a bit `1 << packetType`, or WILL. */
export type PropertyContext = number;

function contextName(ctx: PropertyContext): string {
  if (ctx === WILL) return 'the will properties';
  const names = ['', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE',
    'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];
  return names[31 - Math.clz32(ctx)] ?? 'this packet';
}

type Bag = Record<string, unknown>;

/**
 * The 5.0 tail shared by PUBACK/PUBREC/PUBREL/PUBCOMP, DISCONNECT and AUTH: the reason code may be
 * left out when it is 0 (Success) and there are no properties, and the properties may be left out
 * after it (5.0 sections 3.4.2.1, 3.14.2.1, 3.15.2.1). Fills the packet in place.
 */
export function decodeReasonAndProperties(r: Reader, ctx: PropertyContext, packet: { reasonCode?: number; properties?: Properties }): void {
  if (r.remaining === 0) return;
  packet.reasonCode = r.u8('the reason code');
  if (r.remaining === 0) return;
  const properties = decodeProperties(r, ctx);
  if (properties !== undefined) packet.properties = properties;
}

/** Reads a property length and the properties that follow; undefined when there are none. */
export function decodeProperties(r: Reader, ctx: PropertyContext): Properties | undefined {
  const len = r.varint('the property length');
  if (len === 0) return undefined;
  const outerEnd = r.end;
  const end = r.pos + len;
  if (end > outerEnd) {
    throw new MalformedPacketError(`property length ${len} exceeds the ${r.remaining} bytes left in ${contextName(ctx)}`);
  }
  r.end = end;
  const props: Bag = {};
  while (r.pos < end) {
    const id = r.varint('a property identifier');
    const def = id < 256 ? PROPERTY_BY_ID[id] : undefined;
    if (def === undefined) {
      throw new MalformedPacketError(`unknown property identifier 0x${id.toString(16)} in ${contextName(ctx)}`);
    }
    if ((def.allowedIn & ctx) === 0) {
      throw new MalformedPacketError(`property ${def.name} (0x${id.toString(16)}) is not allowed in ${contextName(ctx)}`);
    }
    readOne(r, def, ctx, props);
  }
  r.end = outerEnd;
  return props as Properties;
}

function readOne(r: Reader, def: PropertyDef, ctx: PropertyContext, props: Bag): void {
  const name = def.name;
  let value: unknown;
  switch (def.type) {
    case 'byte': value = r.u8(name); break;
    case 'u16': value = r.u16(name); break;
    case 'u32': value = r.u32(name); break;
    case 'varint': value = r.varint(name); break;
    case 'utf8': value = r.utf8(name); break;
    case 'binary': value = r.binary(name); break;
    case 'pair': value = r.pair(name); break;
  }
  if (def.flag === true && (value as number) > 1) {
    throw new ProtocolError(`property ${name} must be 0 or 1, got ${value as number}`);
  }
  if (def.nonZero === true && value === 0) {
    throw new ProtocolError(`property ${name} must not be 0`);
  }
  const prev = props[name];
  if (def.type === 'pair' || def.id === 0x0b) {
    // user properties and subscription identifiers are kept as arrays, in wire order
    if (prev === undefined) props[name] = [value];
    else if ((def.repeatIn & ctx) !== 0) (prev as unknown[]).push(value);
    else throw new ProtocolError(`property ${name} appears more than once in ${contextName(ctx)}`);
  } else if (prev !== undefined) {
    throw new ProtocolError(`property ${name} appears more than once in ${contextName(ctx)}`);
  } else {
    props[name] = value;
  }
}

const MAX_U32 = 0xffff_ffff;

function valueSize(def: PropertyDef, v: unknown): number {
  const name = def.name;
  switch (def.type) {
    case 'byte':
      checkInt(v as number, def.flag === true ? 1 : 255, name);
      return 2;
    case 'u16':
      checkInt(v as number, 65_535, name, def.nonZero === true ? 1 : 0);
      return 3;
    case 'u32':
      checkInt(v as number, MAX_U32, name, def.nonZero === true ? 1 : 0);
      return 5;
    case 'varint':
      checkInt(v as number, MAX_VARINT, name, 1);
      return 1 + varintSize(v as number);
    case 'utf8':
      return 1 + utf8Size(v as string, name);
    case 'binary':
      return 1 + binarySize(v as Uint8Array, name);
    case 'pair': {
      const p = v as [string, string];
      if (!Array.isArray(p) || p.length !== 2) throw new CodecError(`${name} entries must be [key, value] pairs`);
      return 1 + utf8Size(p[0], name) + utf8Size(p[1], name);
    }
  }
}

/**
 * Size of the property content (without its length prefix); validates every value (CodecError).
 * Returns 0 for undefined or empty properties.
 */
export function propertiesSize(props: Properties | undefined, ctx: PropertyContext): number {
  if (props === undefined) return 0;
  const bag = props as Bag;
  let size = 0;
  for (let i = 0; i < PROPERTIES.length; i++) {
    const def = PROPERTIES[i]!;
    const v = bag[def.name];
    if (v === undefined) continue;
    if ((def.allowedIn & ctx) === 0) {
      throw new CodecError(`property ${def.name} is not allowed in ${contextName(ctx)}`);
    }
    if (def.type === 'pair' || def.id === 0x0b) {
      if (!Array.isArray(v)) throw new CodecError(`property ${def.name} must be an array`);
      if (v.length > 1 && (def.repeatIn & ctx) === 0) {
        throw new CodecError(`property ${def.name} may appear only once in ${contextName(ctx)}`);
      }
      for (const item of v) size += valueSize(def, item);
    } else {
      size += valueSize(def, v);
    }
  }
  if (size > MAX_VARINT) throw new CodecError('properties are too large');
  return size;
}

/** Bytes of the whole property section: length prefix + content. */
export function propertiesSectionSize(contentSize: number): number {
  return varintSize(contentSize) + contentSize;
}

/** Writes the property length and the properties (contentSize from propertiesSize). */
export function writeProperties(w: Writer, props: Properties | undefined, contentSize: number): void {
  w.varint(contentSize);
  if (contentSize === 0 || props === undefined) return;
  const bag = props as Bag;
  for (let i = 0; i < PROPERTIES.length; i++) {
    const def = PROPERTIES[i]!;
    const v = bag[def.name];
    if (v === undefined) continue;
    if (def.type === 'pair' || def.id === 0x0b) {
      for (const item of v as unknown[]) writeValue(w, def, item);
    } else {
      writeValue(w, def, v);
    }
  }
}

function writeValue(w: Writer, def: PropertyDef, v: unknown): void {
  w.u8(def.id);
  switch (def.type) {
    case 'byte': w.u8(v as number); break;
    case 'u16': w.u16(v as number); break;
    case 'u32': w.u32(v as number); break;
    case 'varint': w.varint(v as number); break;
    case 'utf8': w.utf8(v as string); break;
    case 'binary': w.binary(v as Uint8Array); break;
    case 'pair': {
      const p = v as [string, string];
      w.utf8(p[0]);
      w.utf8(p[1]);
      break;
    }
  }
}
