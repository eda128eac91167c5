/**
 * Packet decoding by fixed-header type: the dispatcher used by the streaming parser, and
 * decodePacket() for one complete packet in a buffer (tools and tests).
 */
import { MalformedPacketError } from './errors.js';
import * as acks from './packets/acks.js';
import * as auth from './packets/auth.js';
import * as connack from './packets/connack.js';
import * as connect from './packets/connect.js';
import * as disconnect from './packets/disconnect.js';
import * as ping from './packets/ping.js';
import * as publish from './packets/publish.js';
import * as suback from './packets/suback.js';
import * as subscribe from './packets/subscribe.js';
import * as unsuback from './packets/unsuback.js';
import * as unsubscribe from './packets/unsubscribe.js';
import { Reader } from './reader.js';
import type { Packet, ProtocolVersion } from './types.js';

const NAMES = ['reserved', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP',
  'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH'];

/**
 * Checks the first byte of a fixed header (type and flags) before the body is read
 * [MQTT-2.2.2-1] [MQTT-2.2.2-2]. In 3.1 the DUP bit of PUBREL/SUBSCRIBE/UNSUBSCRIBE is tolerated
 * (3.1 clients set it on retries).
 */
export function checkFixedHeader(byte0: number, version: ProtocolVersion): void {
  const type = byte0 >> 4;
  const flags = byte0 & 0x0f;
  if (type === 0) throw new MalformedPacketError('packet type 0 is reserved');
  if (type === 15 && version !== 5) throw new MalformedPacketError('packet type 15 (AUTH) is reserved before MQTT 5.0');
  if (type === 3) {
    if ((flags & 0x06) === 0x06) throw new MalformedPacketError('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
    return;
  }
  if (type === 6 || type === 8 || type === 10) {
    if ((version === 3 ? flags & 0x07 : flags) !== 0x02) {
      throw new MalformedPacketError(`${NAMES[type]} fixed header flags must be 0010, got ${flags.toString(2).padStart(4, '0')} [MQTT-2.2.2-1]`);
    }
  } else if (flags !== 0) {
    throw new MalformedPacketError(`${NAMES[type]} fixed header flags must be 0000, got ${flags.toString(2).padStart(4, '0')} [MQTT-2.2.2-1]`);
  }
}

/**
 * Decodes the body r covers (exactly the remaining length) of a packet whose first byte was
 * already checked by checkFixedHeader. Trailing bytes are a MalformedPacketError.
 */
export function decodeBody(byte0: number, r: Reader, version: ProtocolVersion): Packet {
  const flags = byte0 & 0x0f;
  let packet: Packet;
  switch (byte0 >> 4) {
    case 3: return publish.decode(flags, r, version); // consumes the whole body
    case 1: packet = connect.decode(flags, r, version); break;
    case 2: packet = connack.decode(flags, r, version); break;
    case 4: packet = acks.decode('puback', flags, r, version); break;
    case 5: packet = acks.decode('pubrec', flags, r, version); break;
    case 6: packet = acks.decode('pubrel', flags, r, version); break;
    case 7: packet = acks.decode('pubcomp', flags, r, version); break;
    case 8: packet = subscribe.decode(flags, r, version); break;
    case 9: packet = suback.decode(flags, r, version); break;
    case 10: packet = unsubscribe.decode(flags, r, version); break;
    case 11: packet = unsuback.decode(flags, r, version); break;
    case 12: packet = ping.decode('pingreq', r); break;
    case 13: packet = ping.decode('pingresp', r); break;
    case 14: packet = disconnect.decode(flags, r, version); break;
    case 15: packet = auth.decode(flags, r, version); break;
    default: throw new MalformedPacketError('packet type 0 is reserved');
  }
  r.done(NAMES[byte0 >> 4]!);
  return packet;
}

/**
 * Decodes exactly one complete packet (fixed header included) from buf. Throws a
 * MalformedPacketError if buf holds less or more than one packet.
 */
export function decodePacket(buf: Buffer, version: ProtocolVersion): Packet {
  const r = new Reader(buf, 0, buf.length);
  const byte0 = r.u8('the fixed header');
  checkFixedHeader(byte0, version);
  const len = r.varint('the remaining length');
  if (r.remaining !== len) {
    throw new MalformedPacketError(`remaining length ${len} does not match the ${r.remaining} bytes given`);
  }
  return decodeBody(byte0, r, version);
}
