/**
 * `client.messages(filter, options)`: received messages as an async iterator that owns its subscription.
 * With a filter it subscribes on the first `next()` (with the subscribe options given: qos, noLocal, ...)
 * and unsubscribes on `break` / `return()`, as nats.js's subscriptions do; iterators on one filter share
 * one subscription, unsubscribed when the last one stops. A filter the application subscribed itself with
 * `subscribe()` (or `subscribe: false`) is only filtered: that subscription stays the application's.
 * Without a filter it yields every message and subscribes to nothing. Its buffer is bounded: when the
 * consumer falls `limit` messages behind, the iterator stops listening and its next `next()` after the
 * buffered ones rejects with QueueFullError. A refused subscription rejects the first `next()` with
 * SubscribeError. It finishes when the client ends, or on `break` / `return()`.
 */
import type { EventEmitter } from 'node:events';
import { topicMatches } from '../topic/index.js';
import { QueueFullError } from './errors.js';
import { Deque } from './queue.js';
import type { Message } from './types.js';
import type { SubscribeOptions } from './api-types.js';

export interface MessagesOptions extends SubscribeOptions {
  /** messages buffered for a slow consumer before the iterator fails (default 10000) */
  limit?: number;
  /** false: only filter what other subscriptions bring, do not subscribe (the behaviour before 0.2) */
  subscribe?: boolean;
}

/** Internal: how an iterator takes and gives back its share of a subscription (the client implements it). */
export interface SubscriptionOwner {
  /** subscribe (or join an iterator's subscription); resolves true when the iterator holds a share to release */
  acquire(filter: string, options: SubscribeOptions): Promise<boolean>;
  release(filter: string): void;
}

/** The filter a `$share/group/filter` subscription matches with. */
function plainFilter(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const slash = filter.indexOf('/', 7);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

export class MessageIterator implements AsyncIterableIterator<Message> {
  private readonly buffer = new Deque<Message>();
  private waiter: { resolve(r: IteratorResult<Message>): void; reject(e: Error): void } | undefined;
  private done = false;
  private error: Error | undefined;
  private readonly filter: string | undefined;
  private readonly limit: number;
  private readonly onMessage = (m: Message): void => this.push(m);
  private readonly onEnd = (): void => this.finish();
  /** the subscription: not asked yet, being made, or settled (held: ours to release) */
  private subscribing: Promise<void> | undefined;
  private held = false;

  constructor(
    private readonly source: EventEmitter, private readonly rawFilter?: string, private readonly options: MessagesOptions = {},
    private readonly owner?: SubscriptionOwner,
  ) {
    this.filter = rawFilter === undefined ? undefined : plainFilter(rawFilter);
    this.limit = options.limit ?? 10_000;
    source.on('message', this.onMessage);
    source.once('end', this.onEnd);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> { return this; }

  next(): Promise<IteratorResult<Message>> {
    if (this.subscribing === undefined && this.owner !== undefined && this.rawFilter !== undefined && !this.done && this.options.subscribe !== false) {
      // first pull: subscribe, then serve (messages that came meanwhile are buffered)
      const { limit: _l, subscribe: _s, ...subOptions } = this.options;
      const filter = this.rawFilter;
      this.subscribing = this.owner.acquire(filter, subOptions).then(
        (held) => { if (this.done && held) this.owner!.release(filter); else this.held = held; },
        (err: Error) => { if (!this.done) { this.error = err; this.detach(); } },
      );
      return this.subscribing.then(() => this.next());
    }
    const m = this.buffer.shift();
    if (m) return Promise.resolve({ value: m, done: false });
    if (this.error) {
      const e = this.error;
      this.error = undefined;
      this.done = true;
      return Promise.reject(e);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }

  return(): Promise<IteratorResult<Message>> {
    this.finish();
    if (this.held) {
      this.held = false;
      this.owner!.release(this.rawFilter!);
    }
    this.buffer.drain();
    this.error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  private push(m: Message): void {
    if (this.filter !== undefined && !topicMatches(this.filter, m.topic)) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: m, done: false });
    } else if (this.buffer.length >= this.limit) {
      this.error = new QueueFullError(this.limit);
      this.detach();
    } else {
      this.buffer.push(m);
    }
  }

  private finish(): void {
    this.done = true;
    this.detach();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  private detach(): void {
    this.source.off('message', this.onMessage);
    this.source.off('end', this.onEnd);
  }
}
