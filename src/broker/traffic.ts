/**
 * Plain counters for metrics (the HTTP listener's `/metrics` reads them at scrape time): packets in and
 * and their bytes out by type, PUBLISH messages and payload bytes in and out by QoS, connections refused by reason
 * (the broker's `stats` has the rest). Incrementing one is a typed-array or property add on the hot path: no allocation, no call.
 */
export class Traffic {
  /** packets received, by MQTT control packet type (1 CONNECT .. 15 AUTH) */
  readonly packetsIn = new Float64Array(16);
  /** packets queued for sending, by MQTT control packet type (from the first byte of each encoded packet) */
  readonly packetsOut = new Float64Array(16);
  /** bytes of the packets received (fixed header included), by type */
  readonly bytesIn = new Float64Array(16);
  /** bytes of the packets queued for sending, by type */
  readonly bytesOut = new Float64Array(16);
  /** PUBLISH packets received from clients, by QoS */
  readonly publishIn = new Float64Array(3);
  /** payload bytes of the PUBLISH packets received, by QoS */
  readonly publishBytesIn = new Float64Array(3);
  /** PUBLISH packets sent to subscribers, by QoS */
  readonly publishOut = new Float64Array(3);
  /** payload bytes of the PUBLISH packets sent, by QoS */
  readonly publishBytesOut = new Float64Array(3);
  /** connections refused, by reason (a short snake_case word such as `not_authorized`) */
  readonly refused = new Map<string, number>();

  refuse(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }
}

/** MQTT control packet type codes, by the codec's packet type name. */
export const PACKET_TYPE_CODES: Readonly<Record<string, number>> = {
  connect: 1, connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7, subscribe: 8, suback: 9,
  unsubscribe: 10, unsuback: 11, pingreq: 12, pingresp: 13, disconnect: 14, auth: 15,
};

/** The packet type name of each code (index 0 unused). */
export const PACKET_TYPE_NAMES: readonly string[] = ['reserved', ...Object.keys(PACKET_TYPE_CODES)];

/** The reason label of a refused CONNECT, from its MQTT 5 reason code. */
export function refusalReason(code5: number): string {
  switch (code5) {
    case 0x84: return 'unsupported_protocol_version';
    case 0x85: return 'client_id_not_valid';
    case 0x86: return 'bad_username_or_password';
    case 0x87: return 'not_authorized';
    case 0x88: return 'server_unavailable';
    case 0x89: return 'server_busy';
    case 0x8a: return 'banned';
    case 0x8c: return 'bad_authentication_method';
    case 0x95: return 'packet_too_large';
    case 0x9a: return 'retain_not_supported';
    case 0x9c: case 0x9d: return 'redirected';
    case 0x9f: return 'connection_rate_exceeded';
    default: return 'other';
  }
}

/** Upper bounds (seconds) of the store commit-time histogram's buckets. */
export const COMMIT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A fixed-bucket histogram of durations in seconds (Prometheus `le` buckets, cumulative when read). */
export class LatencyHistogram {
  /** observations per bucket (not cumulative); the last one is +Inf */
  readonly counts = new Float64Array(COMMIT_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < COMMIT_BUCKETS.length && seconds > COMMIT_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}
