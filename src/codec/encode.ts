/**
 * encode(packet, version): one Buffer of the exact size, allocated once. Values that cannot be put
 * on the wire, or that the decoder would reject, throw CodecError: whatever encodes, decodes back.
 * 3.x encoders leave out what 3.x cannot carry (properties, reason codes of acks and DISCONNECT).
 * One exception: CONNECT writes the protocol name and level it is given, even a pair the decoder
 * refuses (UnsupportedProtocolVersionError), so that tests can craft such a CONNECT.
 */
import { CodecError } from './errors.js';
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
import type { Packet, ProtocolVersion } from './types.js';

/** Encodes a packet for a connection of the given protocol version (CONNECT uses its own). */
export function encode(packet: Packet, version: ProtocolVersion): Buffer {
  if (version !== 3 && version !== 4 && version !== 5) throw new CodecError(`unknown protocol version ${String(version)}`);
  switch (packet.type) {
    case 'publish': return publish.encode(packet, version);
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp': return acks.encode(packet, version);
    case 'connect': return connect.encode(packet, version);
    case 'connack': return connack.encode(packet, version);
    case 'subscribe': return subscribe.encode(packet, version);
    case 'suback': return suback.encode(packet, version);
    case 'unsubscribe': return unsubscribe.encode(packet, version);
    case 'unsuback': return unsuback.encode(packet, version);
    case 'pingreq': case 'pingresp': return ping.encode(packet);
    case 'disconnect': return disconnect.encode(packet, version);
    case 'auth': return auth.encode(packet, version);
    default: throw new CodecError(`unknown packet type ${String((packet as { type?: unknown }).type)}`);
  }
}
