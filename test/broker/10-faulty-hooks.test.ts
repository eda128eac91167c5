import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, RawClient, startTestBroker, subscribed, type TestBroker } from './_harness.js';
import type { AuthExchange } from '../../src/broker/types.js';

// Embedding code that throws must not take down the publisher, another subscriber or the broker.

test('an authorizeRead hook that throws for one subscriber denies only that delivery', async () => {
  const tb = startTestBroker({
    hooks: { authorizeRead: (s) => { if (s.clientId === 'victim') throw new Error('hook bug'); return true; } },
  });
  try {
    const victim = await connected(tb, { clientId: 'victim' });
    await subscribed(victim, 'fh/t');
    const healthy = await connected(tb, { clientId: 'healthy' });
    await subscribed(healthy, 'fh/t');
    const pub = await connected(tb, { clientId: 'fh-pub' });
    pub.send({ type: 'publish', topic: 'fh/t', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1 });
    await pub.next('puback');
    assert.equal((await healthy.next('publish')).payload.toString(), 'x');
    await victim.nothing(100);
    assert.ok(tb.logs.some((l) => l.includes('authorizeRead threw for victim')));
    pub.send({ type: 'pingreq' });
    await pub.next('pingresp');
    victim.end(); healthy.end(); pub.end();
  } finally { await tb.broker.close(); }
});

test('a publish or disconnect listener that throws is logged and changes nothing for clients', async () => {
  const tb = startTestBroker();
  tb.broker.on('publish', () => { throw new Error('listener bug'); });
  tb.broker.on('disconnect', () => { throw new Error('listener bug'); });
  try {
    const sub = await connected(tb, { clientId: 'lb-sub' });
    await subscribed(sub, 'lb/t');
    const pub = await connected(tb, { clientId: 'lb-pub', will: { topic: 'lb/t', payload: Buffer.from('will'), qos: 0, retain: false } });
    pub.send({ type: 'publish', topic: 'lb/t', payload: Buffer.from('one'), qos: 1, retain: false, dup: false, packetId: 1 });
    await pub.next('puback');
    assert.equal((await sub.next('publish')).payload.toString(), 'one');
    pub.destroy(); // the will goes through the throwing listener too
    assert.equal((await sub.next('publish')).payload.toString(), 'will');
    assert.ok(tb.logs.some((l) => l.includes("a 'publish' listener threw")));
    sub.end();
  } finally { await tb.broker.close(); }
});

test('an authorizePublish hook that rejects closes only that publisher', async () => {
  const tb = startTestBroker({
    hooks: { authorizePublish: async (c) => { if (c.id === 'bad-pub') throw new Error('store down'); return true; } },
  });
  try {
    const sub = await connected(tb, { clientId: 'ap-sub' });
    await subscribed(sub, 'ap/t');
    const bad = await connected(tb, { clientId: 'bad-pub' });
    bad.send({ type: 'publish', topic: 'ap/t', payload: Buffer.from('no'), qos: 0, retain: false, dup: false });
    await bad.closedByBroker();
    const good = await connected(tb, { clientId: 'good-pub' });
    good.send({ type: 'publish', topic: 'ap/t', payload: Buffer.from('yes'), qos: 0, retain: false, dup: false });
    assert.equal((await sub.next('publish')).payload.toString(), 'yes');
    sub.end(); good.end();
  } finally { await tb.broker.close(); }
});

/** another client is served normally: CONNECT, SUBSCRIBE, PUBLISH to itself, PINGREQ */
async function othersServed(tb: TestBroker, id: string): Promise<void> {
  const c = await connected(tb, { clientId: id });
  await subscribed(c, `ok/${id}`);
  c.send({ type: 'publish', topic: `ok/${id}`, payload: Buffer.from('fine'), qos: 0, retain: false, dup: false });
  assert.equal((await c.next('publish')).payload.toString(), 'fine');
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
}

const boom = (): never => { throw new Error('boom'); };

test('an authenticate hook that throws or rejects: that client gets CONNACK "server unavailable" (3 / 0x88), a log line names the hook', async () => {
  const tb = startTestBroker({
    hooks: {
      authenticate: (c) => {
        if (c.id.startsWith('throws')) boom();
        if (c.id.startsWith('rejects')) return Promise.reject(new Error('db down'));
        return true;
      },
    },
  });
  try {
    for (const id of ['throws', 'rejects']) {
      for (const version of [4, 5] as const) {
        const c = RawClient.connectTo(tb, version);
        const ack = await c.connect({ clientId: `${id}${version}` });
        assert.equal(ack.reasonCode, version === 5 ? 0x88 : 3, `${id} v${version}`);
        await c.closedByBroker();
        await othersServed(tb, `other-${id}-${version}`);
      }
    }
    assert.ok(tb.logs.some((l) => /^Error: Client throws4 \[127\.0\.0\.1:\d+\]: the authenticate hook failed: boom$/.test(l)), tb.logs.join('\n'));
    assert.ok(tb.logs.some((l) => /^Error: Client rejects5 \[127\.0\.0\.1:\d+\]: the authenticate hook failed: db down$/.test(l)));
  } finally { await tb.broker.close(); }
});

test('authorizePublish / authorizeSubscribe that throw synchronously or reject: v5 DISCONNECT 0x83 (3.1.1: close), log names the hook', async () => {
  const bad = (id: string): boolean => id.startsWith('bad');
  const tb = startTestBroker({
    hooks: {
      // the will (hw/will) is allowed, so that it shows the end was abnormal
      authorizePublish: (c, topic) => (bad(c.id) && topic === 'hw/x' ? (c.id.endsWith('-throw') ? boom() : Promise.reject(new Error('acl down'))) : true),
      authorizeSubscribe: (c) => (bad(c.id) ? (c.id.endsWith('-throw') ? boom() : Promise.reject(new Error('acl down'))) : true),
    },
  });
  try {
    const watcher = await connected(tb, { clientId: 'hook-watch' });
    await subscribed(watcher, 'hw/#');
    for (const version of [4, 5] as const) {
      for (const how of ['throw', 'reject']) {
        for (const what of ['publish', 'subscribe']) {
          const id = `bad-${what}-${version}-${how}`;
          const c = await connected(tb, { clientId: id, will: { topic: 'hw/will', payload: Buffer.from(id), qos: 0, retain: false } }, version);
          if (what === 'publish') c.send({ type: 'publish', topic: 'hw/x', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 1 });
          else c.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topic: 'hw/#', qos: 0 }] });
          if (version === 5) assert.equal((await c.next('disconnect')).reasonCode, 0x83, id);
          await c.closedByBroker();
          assert.deepEqual(c.packets, [], `${id}: no PUBACK / SUBACK`);
          // an abnormal end: its will goes out (through the hook, which allows the watcher's topics)
          assert.equal((await watcher.next('publish')).payload.toString(), id);
          const hook = what === 'publish' ? 'authorizePublish' : 'authorizeSubscribe';
          const cause = how === 'throw' ? 'boom' : 'acl down';
          assert.ok(tb.logs.some((l) => l.startsWith(`Error: Client ${id} [`) && l.endsWith(`]: the ${hook} hook failed: ${cause}`)), `${id}\n${tb.logs.join('\n')}`);
        }
      }
    }
    await othersServed(tb, 'other-acl');
    watcher.end();
  } finally { await tb.broker.close(); }
});

test('an auth method whose factory or step throws, or whose step rejects: CONNACK 0x88; during re-authentication DISCONNECT 0x83', async () => {
  let n = 0; // steps of 'RE' over all its exchanges: the first (at CONNECT) succeeds, the next throws
  const method = (kind: string) => (): AuthExchange => {
    if (kind === 'factory') boom();
    return {
      step: () => {
        if (kind === 'reauth' && ++n === 1) return { success: true as const };
        if (kind === 'step' || kind === 'reauth') boom();
        return Promise.reject(new Error('rejected'));
      },
    };
  };
  const tb = startTestBroker({ hooks: { authMethods: { F: method('factory'), S: method('step'), R: method('rejects'), RE: method('reauth') } } });
  try {
    for (const m of ['F', 'S', 'R']) {
      const c = RawClient.connectTo(tb, 5);
      const ack = await c.connect({ clientId: `am-${m}`, properties: { authenticationMethod: m } });
      assert.equal(ack.reasonCode, 0x88, m);
      await c.closedByBroker();
    }
    assert.ok(tb.logs.some((l) => l.includes("]: the 'F' authentication method hook failed: boom")), tb.logs.join('\n'));
    assert.ok(tb.logs.some((l) => l.includes("]: the 'R' authentication method hook failed: rejected")));
    const c = RawClient.connectTo(tb, 5);
    assert.equal((await c.connect({ clientId: 'am-RE', properties: { authenticationMethod: 'RE' } })).reasonCode, 0);
    c.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'RE' } });
    assert.equal((await c.next('disconnect')).reasonCode, 0x83);
    await c.closedByBroker();
    assert.ok(tb.logs.some((l) => l.startsWith('Error: Client am-RE [') && l.endsWith("]: the 'RE' authentication method hook failed: boom")));
    await othersServed(tb, 'other-am');
  } finally { await tb.broker.close(); }
});

test('an authorizePublish hook that throws or rejects for a will: logged naming the hook, the will is not published, others go on', async () => {
  const tb = startTestBroker({
    hooks: {
      authorizePublish: (c, topic) => {
        if (topic !== 'fw/will') return true;
        return c.id === 'fw-throw' ? boom() : Promise.reject(new Error('acl down'));
      },
    },
  });
  try {
    const w = await connected(tb, { clientId: 'fw-watch' });
    await subscribed(w, 'fw/#');
    for (const id of ['fw-throw', 'fw-reject']) {
      const c = await connected(tb, { clientId: id, will: { topic: 'fw/will', payload: Buffer.from(id), qos: 0, retain: false } });
      c.destroy();
      await w.nothing(100);
    }
    assert.ok(tb.logs.some((l) => /^Error: Client fw-throw \[127\.0\.0\.1:\d+\]: the authorizePublish hook failed for its will to 'fw\/will': boom$/.test(l)), tb.logs.join('\n'));
    assert.ok(tb.logs.some((l) => /^Error: Client fw-reject \[.*\]: the authorizePublish hook failed for its will to 'fw\/will': acl down$/.test(l)));
    await othersServed(tb, 'other-fw');
    w.end();
  } finally { await tb.broker.close(); }
});
