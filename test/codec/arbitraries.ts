/** fast-check arbitraries producing only valid packets, per protocol version. */
import fc from 'fast-check';
import { MAX_VARINT, PROPERTIES, WILL, type Packet, type Properties, type ProtocolVersion } from '../../src/codec/index.js';

/** Any Unicode text without U+0000 (lone surrogates are never produced by the 'binary' unit). */
export const mqttString = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replaceAll('\0', '0'));
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const qos = fc.constantFrom(0 as const, 1 as const, 2 as const);
const packetId = fc.integer({ min: 1, max: 65_535 });
const byte = fc.integer({ min: 0, max: 255 });
const pair = fc.tuple(mqttString, mqttString);

/** fc.record with ordinary objects (deepStrictEqual compares prototypes). */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const CTX = { connect: 1 << 1, connack: 1 << 2, publish: 1 << 3, puback: 1 << 4, pubrec: 1 << 5, pubrel: 1 << 6,
  pubcomp: 1 << 7, subscribe: 1 << 8, suback: 1 << 9, unsubscribe: 1 << 10, unsuback: 1 << 11,
  disconnect: 1 << 14, auth: 1 << 15, will: WILL } as const;

function valueArb(ctx: number, def: (typeof PROPERTIES)[number]): fc.Arbitrary<unknown> {
  const min = def.nonZero === true ? 1 : 0;
  switch (def.type) {
    case 'byte': return def.flag === true ? fc.constantFrom(0, 1) : byte;
    case 'u16': return fc.integer({ min, max: 65_535 });
    case 'u32': return fc.integer({ min, max: 0xffff_ffff });
    case 'varint': // subscription identifiers: several in PUBLISH, one in SUBSCRIBE
      return fc.array(fc.integer({ min: 1, max: MAX_VARINT }), { minLength: 1, maxLength: (def.repeatIn & ctx) !== 0 ? 3 : 1 });
    case 'utf8': return mqttString;
    case 'binary': return bytes;
    case 'pair': return fc.array(pair, { minLength: 1, maxLength: 3 });
  }
}

/** Properties allowed in a context; undefined when none were drawn (decoders omit empty properties). */
export function properties(ctx: number): fc.Arbitrary<Properties | undefined> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const def of PROPERTIES) if ((def.allowedIn & ctx) !== 0) model[def.name] = valueArb(ctx, def);
  return fc.record(model, { requiredKeys: [], noNullPrototype: true }).map((p) => (Object.keys(p).length === 0 ? undefined : p as Properties));
}

/** Drops keys whose value is undefined (decoded packets never have them). */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function connect(v: ProtocolVersion): fc.Arbitrary<Packet> {
  const will = rec({ topic: mqttString, payload: bytes, qos, retain: fc.boolean(),
    properties: v === 5 ? properties(CTX.will) : fc.constant(undefined) }).map(clean);
  return rec({
    clean: fc.boolean(), keepalive: fc.integer({ min: 0, max: 65_535 }), clientId: mqttString,
    will: fc.option(will, { nil: undefined }), username: fc.option(mqttString, { nil: undefined }),
    password: fc.option(bytes, { nil: undefined }), bridge: fc.constantFrom(undefined, true),
    properties: v === 5 ? properties(CTX.connect) : fc.constant(undefined),
  }).map((p) => {
    if (v !== 5 && p.username === undefined) p.password = undefined; // [MQTT-3.1.2-22]
    return clean({ type: 'connect' as const, protocolName: v === 3 ? 'MQIsdp' : 'MQTT', protocolVersion: v, ...p });
  });
}

function connack(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return rec({ sessionPresent: fc.boolean(), reasonCode: byte,
    properties: v === 5 ? properties(CTX.connack) : fc.constant(undefined) })
    .map((p) => clean({ type: 'connack' as const, ...p, sessionPresent: v !== 3 && p.reasonCode === 0 && p.sessionPresent }));
}

function publish(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return rec({ topic: mqttString, payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), qos,
    retain: fc.boolean(), dup: fc.boolean(), packetId,
    properties: v === 5 ? properties(CTX.publish) : fc.constant(undefined) })
    .map((p) => {
      let props = p.properties;
      if (v === 5 && p.topic === '' && props?.topicAlias === undefined) props = { ...props, topicAlias: 1 };
      return clean({ type: 'publish' as const, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain,
        dup: p.qos === 0 && v !== 3 ? false : p.dup, packetId: p.qos > 0 ? p.packetId : undefined, properties: props });
    });
}

function ack(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc.constantFrom('puback' as const, 'pubrec' as const, 'pubrel' as const, 'pubcomp' as const).chain((type) =>
    rec({ packetId, reasonCode: byte, properties: properties(CTX[type]) }).map((p) =>
      v === 5 ? clean({ type, ...p }) : { type, packetId: p.packetId }));
}

function subscribe(v: ProtocolVersion): fc.Arbitrary<Packet> {
  const sub = v === 5
    ? rec({ topic: mqttString, qos, noLocal: fc.boolean(), retainAsPublished: fc.boolean(),
      retainHandling: fc.constantFrom(0 as const, 1 as const, 2 as const) })
    : rec({ topic: mqttString, qos });
  return rec({ packetId, subscriptions: fc.array(sub, { minLength: 1, maxLength: 4 }),
    properties: v === 5 ? properties(CTX.subscribe) : fc.constant(undefined) })
    .map((p) => clean({ type: 'subscribe' as const, ...p }));
}

function suback(v: ProtocolVersion): fc.Arbitrary<Packet> {
  const code = v === 5 ? byte : fc.constantFrom(0, 1, 2, 0x80);
  return rec({ packetId, reasonCodes: fc.array(code, { maxLength: 5 }),
    properties: v === 5 ? properties(CTX.suback) : fc.constant(undefined) })
    .map((p) => clean({ type: 'suback' as const, ...p }));
}

function unsubscribe(v: ProtocolVersion): fc.Arbitrary<Packet> {
  return rec({ packetId, topics: fc.array(mqttString, { minLength: 1, maxLength: 4 }),
    properties: v === 5 ? properties(CTX.unsubscribe) : fc.constant(undefined) })
    .map((p) => clean({ type: 'unsubscribe' as const, ...p }));
}

function unsuback(v: ProtocolVersion): fc.Arbitrary<Packet> {
  if (v !== 5) return packetId.map((id) => ({ type: 'unsuback' as const, packetId: id }));
  return rec({ packetId, reasonCodes: fc.array(byte, { maxLength: 5 }), properties: properties(CTX.unsuback) })
    .map((p) => clean({ type: 'unsuback' as const, ...p }));
}

function disconnect(v: ProtocolVersion): fc.Arbitrary<Packet> {
  if (v !== 5) return fc.constant({ type: 'disconnect' as const });
  return rec({ reasonCode: byte, properties: properties(CTX.disconnect) })
    .map((p) => clean({ type: 'disconnect' as const, ...p }));
}

function auth(): fc.Arbitrary<Packet> {
  return rec({ reasonCode: byte, properties: properties(CTX.auth) })
    .map((p) => clean({ type: 'auth' as const, ...p }));
}

const ping = fc.constantFrom<Packet>({ type: 'pingreq' }, { type: 'pingresp' });

/** Arbitraries by packet type name for one version (no CONNECT: it would change the version). */
export function packetArbs(v: ProtocolVersion): Record<string, fc.Arbitrary<Packet>> {
  const arbs: Record<string, fc.Arbitrary<Packet>> = {
    connect: connect(v), connack: connack(v), publish: publish(v), acks: ack(v), subscribe: subscribe(v),
    suback: suback(v), unsubscribe: unsubscribe(v), unsuback: unsuback(v), ping, disconnect: disconnect(v),
  };
  if (v === 5) arbs.auth = auth();
  return arbs;
}

/** Any valid packet of one version other than CONNECT. */
export function anyPacket(v: ProtocolVersion): fc.Arbitrary<Packet> {
  const { connect: _c, ...rest } = packetArbs(v);
  return fc.oneof(...Object.values(rest));
}
