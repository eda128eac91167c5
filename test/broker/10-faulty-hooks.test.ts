import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, startTestBroker, subscribed } from './_harness.js';

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
