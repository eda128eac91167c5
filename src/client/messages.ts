/**
 * `client.messages(filter)`: received messages as an async iterator. It only filters what the client
 * receives (it does not subscribe). Its buffer is bounded: when the consumer falls `limit` messages
 * behind, the iterator stops listening and its next `next()` after the buffered ones rejects with
 * QueueFullError. It finishes when the client ends, or on `break` / `return()`.
 */
import type { EventEmitter } from 'node:events';
import { topicMatches } from '../topic/index.js';
import { QueueFullError } from './errors.js';
import { Deque } from './queue.js';
import type { Message } from './types.js';

export interface MessagesOptions {
  /** messages buffered for a slow consumer before the iterator fails (default 10000) */
  limit?: number;
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

  constructor(private readonly source: EventEmitter, filter?: string, options: MessagesOptions = {}) {
    this.filter = filter === undefined ? undefined : plainFilter(filter);
    this.limit = options.limit ?? 10_000;
    source.on('message', this.onMessage);
    source.once('end', this.onEnd);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> { return this; }

  next(): Promise<IteratorResult<Message>> {
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
