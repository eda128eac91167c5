import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';

test('$SYS/broker topics are published as retained messages with the broker counters', async () => {
  const tb = startTestBroker({ sysInterval: 1 });
  // $SYS is published from listen(); without sockets start it directly
  (tb.broker as unknown as { sys: { start(): void } }).sys.start();
  try {
    const c = await connected(tb, { clientId: 'sysreader' });
    await subscribed(c, '$SYS/broker/#');
    const seen = new Map<string, string>();
    const deadline = Date.now() + 3000;
    while (!(seen.has('$SYS/broker/version') && seen.get('$SYS/broker/clients/connected') === '1') && Date.now() < deadline) {
      const m = await c.next('publish', 3000);
      seen.set(m.topic, m.payload.toString());
    }
    assert.match(seen.get('$SYS/broker/version') ?? '', /^midge version/);
    assert.equal(seen.get('$SYS/broker/clients/connected'), '1');
    for (const t of ['uptime', 'messages/received', 'bytes/received', 'subscriptions/count', 'retained messages/count']) {
      assert.ok(seen.has(`$SYS/broker/${t}`), t);
    }
    c.end();
  } finally { await tb.broker.close(); }
});
