import type { Broker } from '../broker/broker.js';
import type { Connection } from '../broker/connection.js';
import type { Message } from '../broker/types.js';

/**
 * The cluster seam beside the Store (DESIGN.md "The two seams"). A broker without one is a single node:
 * nothing of this runs and the hot path pays one `undefined` check. The Redis bus (redis-bus.ts) is the
 * one implementation; the broker calls it at these points only.
 */
export interface Bus {
  readonly nodeId: string;
  /** join the cluster: index of the other nodes' subscriptions, this node's inbox, leases (Broker.start) */
  start(broker: Broker): Promise<void>;
  /**
   * A message accepted on this node: forward it to the nodes whose subscriptions match (retained ones to
   * every node). Returns the shared groups (`$share/G/F`) that another node delivers this message to, which
   * the local router skips; undefined when none.
   */
  route(msg: Message): ReadonlySet<string> | undefined;
  /**
   * Before a CONNECT opens its session: take the session from the node that owns it (closing its connection
   * there) and load it from the store. Rejects when the cluster cannot answer (the CONNECT is refused 0x88).
   */
  claim(clientId: string, clean: boolean): Promise<void>;
  /** a session opened or resumed here: this node owns it */
  sessionOwned(conn: Connection): void;
  /** a session ended here (discarded, expired) */
  sessionEnded(clientId: string): void;
  /** a connected client's connection ended: its will is no longer this node's to publish on failure */
  connectionEnded(conn: Connection): void;
  /** the router's count of a filter (a `$share/G/F` counts as its own filter) went 0 -> 1 or 1 -> 0 */
  filterChanged(filter: string, added: boolean): void;
  /** a retained message removed without a PUBLISH (admin API): the other nodes forget it too */
  retainCleared(topic: string): void;
  /** the cluster ops of this turn, committed with the turn's changes (the Redis store's commit) */
  takeOps(): Array<string | Buffer> | undefined;
  /** traffic and membership, for $SYS and metrics */
  readonly stats: BusStats;
  /** leave: this node's sessions are adopted by another node at once */
  close(): Promise<void>;
}

export interface BusStats {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** live nodes, this one included */
  nodes(): number;
  /** connected clients per live node, as each node last reported them */
  clientsByNode(): Map<string, number>;
}
