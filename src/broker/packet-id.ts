/**
 * Packet identifiers for outgoing QoS 1/2 messages: 1..65535, round robin, never one that is
 * still in flight [MQTT-2.3.1-4]. `inUse` is the in-flight map keyed by packet id (O(1) lookup).
 */
export class PacketIdAllocator {
  private next = 1;

  allocate(inUse: { has(id: number): boolean }): number {
    for (let tries = 0; tries < 65535; tries++) {
      const id = this.next;
      this.next = id === 65535 ? 1 : id + 1;
      if (!inUse.has(id)) return id;
    }
    return 0; // all 65535 in flight: the caller queues instead
  }
}
