/**
 * Typed errors that carry an MQTT 5.0 reason code. The codec throws only these.
 * One module in the broker (and one in the client) maps them to what the peer gets.
 */
export class MqttError extends Error {
  constructor(message: string, readonly reasonCode: number) {
    super(message);
    this.name = new.target.name;
  }
}

/** 0x81: the bytes are not a well-formed MQTT packet. */
export class MalformedPacketError extends MqttError {
  constructor(message: string) { super(message, 0x81); }
}

/** 0x82: well-formed bytes that break a rule of the protocol. */
export class ProtocolError extends MqttError {
  constructor(message: string) { super(message, 0x82); }
}

/** 0x95: the packet is larger than the maximum packet size (found from the fixed header). */
export class PacketTooLargeError extends MqttError {
  constructor(readonly size: number, readonly limit: number) {
    super(`packet of ${size} bytes exceeds the maximum packet size of ${limit} bytes`, 0x95);
  }
}

/**
 * 0x84 (5.0) / CONNACK return code 1 (3.x): CONNECT with a protocol name or level we do not speak.
 * `protocolVersion` is the level byte as received, so the broker can answer in a form the peer reads.
 */
export class UnsupportedProtocolVersionError extends MqttError {
  constructor(message: string, readonly protocolName: string, readonly protocolVersion: number) {
    super(message, 0x84);
  }
}

/** Thrown by encoders for packets that cannot be put on the wire (bad field values). */
export class CodecError extends MqttError {
  constructor(message: string) { super(message, 0x83); }
}
