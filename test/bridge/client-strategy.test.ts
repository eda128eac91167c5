/**
 * The client library's reconnect `strategy` (what a bridge uses for restart_timeout and its addresses):
 * it picks the delay and the server of each reconnection; the session's in-flight state goes along.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker } from '../../src/index.js';
import { connect } from '../../src/client/index.js';

test('reconnect strategy: called once with attempt 1 and a ConnectionLostError when broker A closes; the client goes to the host and port it returns (broker B)', { timeout: 20_000 }, async () => {
  const a = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0 });
  const b = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0 });
  const [aa] = await a.listen();
  const [ba] = await b.listen();
  const calls: Array<[number, string]> = [];
  const client = await connect(`mqtt://127.0.0.1:${aa!.port}`, {
    clientId: 'strategy-1', keepalive: 5,
    reconnect: { strategy: (attempt, err) => { calls.push([attempt, err?.constructor.name ?? '']); return { delay: 50, host: '127.0.0.1', port: ba!.port }; } },
  });
  try {
    const reconnected = new Promise<void>((resolve) => client.once('connect', () => resolve()));
    await a.close();
    await reconnected;
    assert.equal(client.server.port, ba!.port, 'now on the second broker');
    assert.deepEqual(calls.map((c) => c[0]), [1]);
    assert.equal(calls[0]![1], 'ConnectionLostError');
    const mid = await client.publish('s/1', 'on-b', { qos: 1 });
    assert.equal(typeof mid, 'number');
  } finally {
    await client.end({ force: true });
    await b.close();
  }
});
