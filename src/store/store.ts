import type { Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

/**
 * Durable state behind the broker (DESIGN.md "Store"). The broker keeps its working state in
 * memory and writes through to a Store when one is configured; on start it loads from it.
 * Implementations: memory (tests, contract reference); SQLite and Redis come with their issues.
 */
export interface StoredMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  expiresAt?: number;
}

export interface StoredSubscription {
  filter: string;
  qos: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  subscriptionId?: number;
}

export interface SessionState {
  clientId: string;
  protocolVersion: ProtocolVersion;
  subscriptions: StoredSubscription[];
  /** seconds after disconnect; 0xFFFFFFFF = never */
  expiryInterval: number;
  /** ms time of the last disconnect, undefined while connected */
  disconnectedAt?: number;
}

export interface InflightEntry {
  packetId: number;
  message: StoredMessage;
  qos: QoS;
  /** 'publish': waiting for PUBACK/PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP */
  state: 'publish' | 'pubrel';
}

export interface Store {
  /** true when state survives a restart (the broker only writes through to durable stores) */
  readonly durable: boolean;
  loadSessions(): Promise<SessionState[]>;
  saveSession(s: SessionState): Promise<void>;
  deleteSession(clientId: string): Promise<void>;

  putRetained(topic: string, msg: StoredMessage | null): Promise<void>;
  loadRetained(): Promise<StoredMessage[]>;

  enqueue(clientId: string, msgs: StoredMessage[]): Promise<void>;
  dequeue(clientId: string, max: number): Promise<StoredMessage[]>;
  putInflight(clientId: string, entry: InflightEntry): Promise<void>;
  ackInflight(clientId: string, packetId: number): Promise<void>;
  listInflight(clientId: string): Promise<InflightEntry[]>;
  putIncomingQos2(clientId: string, packetId: number): Promise<void>;
  releaseIncomingQos2(clientId: string, packetId: number): Promise<void>;

  putWill(clientId: string, will: Will, fireAt: number): Promise<void>;
  takeDueWills(now: number): Promise<Array<{ clientId: string; will: Will }>>;

  /** one commit point: acknowledgements wait for it */
  flush(): Promise<void>;
  close(): Promise<void>;
}
