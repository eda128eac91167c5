/** The MQTT codec: bytes <-> packets for MQTT 3.1, 3.1.1 and 5.0. Pure: no I/O. */
export type * from './types.js';
export {
  MqttError, MalformedPacketError, ProtocolError, PacketTooLargeError, UnsupportedProtocolVersionError, CodecError,
} from './errors.js';
export {
  PacketTypeId, PacketTypeName, MAX_VARINT, MAX_PACKET_SIZE, PROPERTIES, PROPERTY_BY_ID, WILL,
  ReasonCode, ConnackReturnCode, reasonCodeText, connackReturnCodeText,
  type PropertyDef, type PropertyType, type ReasonCodeName,
} from './constants.js';
export { Parser, type ParserOptions } from './parser.js';
export { encode } from './encode.js';
export { encodeShortAck } from './packets/acks.js';
export { decodePacket } from './decode.js';
export { isValidUtf8String, isValidMqttString } from './utf8.js';
