import type { Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

/**
 * Durable state behind the broker (DESIGN.md "Store"). The broker keeps its working state in
 * memory and records every change to durable state into the turn's change set; the set is committed
 * as one transaction, and the acknowledgements of that turn are written only after it.
 */
export interface StoredMessage { id: number; topic: string; payload: Buffer; qos: QoS; retain: boolean; properties?: Properties; expiresAt?: number; origin?: string }
export interface StoredSubscription { filter: string; qos: QoS; noLocal: boolean; retainAsPublished: boolean; retainHandling: 0 | 1 | 2; subscriptionId?: number }
export interface StoredSession { clientId: string; protocolVersion: ProtocolVersion; username?: string; listenerPort?: number; expiryInterval: number; disconnectedAt?: number }
export interface QueuedRef { seq: number; messageId: number; qos: QoS; retain: boolean; subIds?: number[] }
export interface InflightRef { packetId: number; messageId: number; qos: QoS; retain: boolean; subIds?: number[]; state: 'publish' | 'pubrel' }
export interface StoredWill { clientId: string; will: Will; fireAt: number; username?: string; listenerPort?: number }
export type Change =
  | { op: 'message'; msg: StoredMessage }
  | { op: 'session'; session: StoredSession }
  | { op: 'dropSession'; clientId: string }
  | { op: 'sub'; clientId: string; sub: StoredSubscription }
  | { op: 'unsub'; clientId: string; filter: string }
  | { op: 'enqueue'; clientId: string; ref: QueuedRef }
  | { op: 'dequeue'; clientId: string; seq: number }
  | { op: 'inflight'; clientId: string; ref: InflightRef }
  | { op: 'inflightDone'; clientId: string; packetId: number }
  | { op: 'qos2'; clientId: string; packetId: number }
  | { op: 'qos2Done'; clientId: string; packetId: number }
  | { op: 'retain'; topic: string; messageId: number }
  | { op: 'unretain'; topic: string }
  | { op: 'will'; will: StoredWill }
  | { op: 'willDone'; clientId: string };
export interface Window { inflight: Array<InflightRef & { message: StoredMessage }>; queued: Array<QueuedRef & { message: StoredMessage }>; incomingQos2: number[] }
export interface Store {
  readonly kind: 'memory' | 'sqlite';
  loadMeta(): Promise<{ lastMessageId: number; lastSeq: number }>;
  loadSessions(): AsyncIterable<StoredSession>;
  loadSubscriptions(): AsyncIterable<{ clientId: string; sub: StoredSubscription }>;
  loadSession(clientId: string): Promise<StoredSession | undefined>;
  loadWindow(clientId: string): Promise<Window>;
  loadRetained(): AsyncIterable<{ topic: string; message: StoredMessage }>;
  loadWills(): Promise<StoredWill[]>;
  commit(changes: readonly Change[]): Promise<void>;
  close(): Promise<void>;
}
