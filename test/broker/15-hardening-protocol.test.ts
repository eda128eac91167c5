import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, RawClient, sleep, startTestBroker, subscribed, type TestBroker } from './_harness.js';
import type { AuthExchange, AuthStep } from '../../src/broker/types.js';
import type { ConnectPacket, Will } from '../../src/codec/types.js';

// Protocol answers Mosquitto 2 users rely on, and a deadline for every state before CONNACK.
// Where a comment says "mosquitto 2.0.11:", that is what Debian's /usr/sbin/mosquitto answered to the same
// bytes on 127.0.0.1 (raw-packet probes written for this change).

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/** a client that is served normally while others are stuck: CONNECT, SUBSCRIBE, PUBLISH, PINGREQ */
async function bystander(tb: TestBroker, id: string): Promise<void> {
  const c = await connected(tb, { clientId: id });
  await subscribed(c, `by/${id}`, 1);
  c.send({ type: 'publish', topic: `by/${id}`, payload: Buffer.from('still here'), qos: 1, retain: false, dup: false, packetId: 7 });
  const got = [await c.next(), await c.next()].map((p) => p.type).sort();
  assert.deepEqual(got, ['puback', 'publish']);
  c.send({ type: 'pingreq' });
  await c.next('pingresp');
  c.end();
}

/** time from now until the broker closes c (bounded by maxMs) */
async function closedWithin(c: RawClient, maxMs: number): Promise<number> {
  const t0 = Math.round(performance.now());
  await c.closedByBroker(maxMs);
  return Math.round(performance.now()) - t0;
}

// ---- 1. deadlines before CONNACK ----

test('connect deadline: an authenticate hook that never settles gets CONNACK "server unavailable" after midge_connect_timeout', async () => {
  const tb = startTestBroker({
    connectTimeout: 0.6,
    hooks: { authenticate: (c) => (c.id.startsWith('stuck') ? never<boolean>() : true) },
  });
  try {
    for (const version of [4, 5] as const) {
      const c = RawClient.connectTo(tb, version);
      const t0 = Math.round(performance.now());
      c.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: version, clean: true, keepalive: 60, clientId: `stuck${version}` });
      await sleep(300);
      assert.equal(c.closed, false, 'not closed before the deadline');
      await bystander(tb, `by-auth-${version}`); // served while the hook hangs
      const ack = await c.next('connack', 3000);
      assert.equal(ack.reasonCode, version === 5 ? 0x88 : 3);
      await c.closedByBroker();
      const took = Math.round(performance.now()) - t0;
      // the sweep runs every 500 ms: closed between the deadline and deadline + one sweep (+ slack)
      assert.ok(took >= 550 && took < 2500, `closed after ${took} ms`);
    }
    assert.ok(tb.logs.some((l) => /Client stuck4 \[127\.0\.0\.1:\d+\] did not complete CONNECT within 0\.6 s \(waiting for the authenticate hook\), disconnecting\./.test(l)), tb.logs.join('\n'));
  } finally { await tb.broker.close(); }
});

/** MIDGE-TEST: first step → continue (a challenge); the client's answer 'ok' → success (username from it), else failure */
function testMethod(opts: { hangOnFirst?: boolean; hangOnAnswer?: boolean; reauthUser?: string } = {}): () => AuthExchange {
  return () => {
    let n = 0;
    return {
      step(data): Promise<AuthStep> | AuthStep {
        n++;
        if (n === 1) {
          if (opts.hangOnFirst) return never<AuthStep>();
          if (data?.toString() === 'direct') return { success: true, username: 'alice' };
          return { continue: Buffer.from('challenge') };
        }
        if (opts.hangOnAnswer) return never<AuthStep>();
        return data?.toString().startsWith('ok') ? { success: true, username: data.toString().slice(3) || 'alice' } : { failure: true };
      },
    };
  };
}

test('connect deadline: a v5 client that never answers the AUTH challenge is closed (no CONNACK); a stuck method step gets CONNACK 0x88', async () => {
  const tb = startTestBroker({
    connectTimeout: 0.6,
    hooks: { authMethods: { 'MIDGE-TEST': testMethod(), 'MIDGE-HANG': testMethod({ hangOnFirst: true }) } },
  });
  try {
    const silent = RawClient.connectTo(tb, 5);
    silent.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'silent', properties: { authenticationMethod: 'MIDGE-TEST' } });
    assert.equal((await silent.next('auth')).reasonCode, 0x18);
    const took = await closedWithin(silent, 3000);
    assert.ok(took >= 300 && took < 2500, `closed after ${took} ms`);
    assert.deepEqual(silent.packets, [], 'no CONNACK for a client that did not answer');

    const hung = RawClient.connectTo(tb, 5);
    hung.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 5, clean: true, keepalive: 60, clientId: 'hung', properties: { authenticationMethod: 'MIDGE-HANG' } });
    await bystander(tb, 'by-method');
    assert.equal((await hung.next('connack', 3000)).reasonCode, 0x88);
    await hung.closedByBroker();

    assert.ok(tb.logs.some((l) => l.includes("Client silent [") && l.includes("did not complete CONNECT within 0.6 s (waiting for the client's answer to the 'MIDGE-TEST' AUTH challenge)")), tb.logs.join('\n'));
    assert.ok(tb.logs.some((l) => l.includes("Client hung [") && l.includes("(waiting for the 'MIDGE-HANG' authentication method)")));
  } finally { await tb.broker.close(); }
});

test('connect deadline: a connection that never sends CONNECT is closed after midge_connect_timeout, with a log line', async () => {
  const tb = startTestBroker({ connectTimeout: 0.6 });
  try {
    const idle = RawClient.connectTo(tb);
    idle.sendRaw([0x10]); // half a fixed header, then nothing
    await sleep(300);
    assert.equal(idle.closed, false);
    const took = await closedWithin(idle, 3000);
    assert.ok(took < 2500, `closed after ${took} ms`);
    assert.ok(tb.logs.some((l) => /Client <unknown> \[127\.0\.0\.1:\d+\] sent no CONNECT within 0\.6 s, disconnecting\./.test(l)));
  } finally { await tb.broker.close(); }
});

test('re-authentication deadline: a client that abandons the exchange gets DISCONNECT 0x87, a stuck step DISCONNECT 0x89', async () => {
  const tb = startTestBroker({
    connectTimeout: 0.6,
    hooks: { authMethods: { 'MIDGE-TEST': testMethod(), 'MIDGE-REHANG': testMethod({ hangOnAnswer: true }) } },
  });
  try {
    for (const [method, code, waiting] of [['MIDGE-TEST', 0x87, "the client's answer to the 'MIDGE-TEST' AUTH challenge"], ['MIDGE-REHANG', 0x89, "the 'MIDGE-REHANG' authentication method"]] as const) {
      const c = RawClient.connectTo(tb, 5);
      const ack = await c.connect({ clientId: `re-${method}`, properties: { authenticationMethod: method, authenticationData: Buffer.from('direct') } });
      assert.equal(ack.reasonCode, 0);
      await sleep(700); // the deadline counts from the start of the re-authentication, not from CONNECT
      c.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: method } });
      assert.equal((await c.next('auth')).reasonCode, 0x18);
      if (method === 'MIDGE-REHANG') c.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: method, authenticationData: Buffer.from('ok') } });
      await sleep(300);
      assert.equal(c.closed, false, 'not before the deadline');
      c.send({ type: 'pingreq' }); // the connection is served meanwhile (pings go on while the client thinks)
      if (method === 'MIDGE-TEST') await c.next('pingresp');
      const d = await c.next('disconnect', 3000);
      assert.equal(d.reasonCode, code);
      await c.closedByBroker();
      assert.ok(tb.logs.some((l) => l.includes(`Client re-${method} [`) && l.includes(`did not complete re-authentication within 0.6 s (waiting for ${waiting}), disconnecting.`)), tb.logs.join('\n'));
    }
    await bystander(tb, 'by-reauth');
  } finally { await tb.broker.close(); }
});

// ---- 2. max_keepalive for 3.1 / 3.1.1 ----

test('max_keepalive refuses a longer (or zero) 3.x keepalive with "identifier rejected"; v5 gets a server keepalive; no limit by default', async () => {
  // mosquitto.conf(5) from 2.0.12 on: a 3.x keepalive over max_keepalive gets CONNACK 2. mosquitto 2.0.11 (the one
  // installed) still accepts every 3.x keepalive (checked: k0, 60, 100, 101, 65535 with max_keepalive 100 → 0).
  const limited = startTestBroker({ maxKeepalive: 100 });
  try {
    const rows: Array<[3 | 4 | 5, number, number]> = [
      [4, 101, 2], [4, 65535, 2], [4, 0, 2], [3, 101, 2], [3, 0, 2], [4, 100, 0], [4, 60, 0], [3, 10, 0], [5, 101, 0], [5, 0, 0],
    ];
    for (const [version, keepalive, code] of rows) {
      const c = RawClient.connectTo(limited, version);
      const ack = await c.connect({ clientId: `ka-${version}-${keepalive}`, keepalive });
      assert.equal(ack.reasonCode, code, `v${version} keepalive ${keepalive}`);
      if (version === 5) assert.equal(ack.properties?.serverKeepAlive, 100, 'v5 is told the maximum instead');
      if (code !== 0) await c.closedByBroker(); else c.end();
    }
    assert.ok(limited.logs.some((l) => l.includes('refused: keepalive 101 is over max_keepalive 100')));
    assert.ok(limited.logs.some((l) => l.includes('refused: keepalive 0 is 0 (none) with max_keepalive 100')));
  } finally { await limited.broker.close(); }
  const dflt = startTestBroker();
  try {
    for (const [version, keepalive] of [[4, 0], [4, 60], [4, 65535], [3, 0], [5, 0]] as const) {
      const c = RawClient.connectTo(dflt, version);
      assert.equal((await c.connect({ clientId: `kd-${version}-${keepalive}`, keepalive })).reasonCode, 0, `default: v${version} keepalive ${keepalive}`);
      c.end();
    }
  } finally { await dflt.broker.close(); }
});

// ---- 3. a will is checked like a PUBLISH ----

const W = (topic: string, payload = 'w', retain = false): Will => ({ topic, payload: Buffer.from(payload), qos: 0, retain });

test('a will to $SYS is never published: $SYS/broker/version cannot be replaced through a retained will', async () => {
  // mosquitto 2.0.11: CONNACK 0 for a retained will to $SYS/broker/version; after the socket closes, the
  // retained value is still "mosquitto version 2.0.11" (and a will to $SYS/fake is not retained either)
  const tb = startTestBroker();
  try {
    tb.broker.publish({ topic: '$SYS/broker/version', payload: Buffer.from('midge version x'), qos: 0, retain: true });
    for (const topic of ['$SYS/broker/version', '$SYS/fake', '$SYSX', '$SYS']) {
      const c = RawClient.connectTo(tb);
      assert.equal((await c.connect({ clientId: 'sysw', will: W(topic, 'pwned', true) })).reasonCode, 0, topic);
      c.destroy();
      await sleep(50);
    }
    const s = await connected(tb, { clientId: 'sys-reader' });
    assert.deepEqual(await subscribed(s, '$SYS/#'), [0]);
    const m = await s.next('publish');
    assert.equal(m.topic, '$SYS/broker/version');
    assert.equal(m.payload.toString(), 'midge version x');
    await s.nothing(150);
    assert.equal(tb.logs.filter((l) => /Denied will of sysw to '\$SYS/.test(l)).length, 4);
    s.end();
  } finally { await tb.broker.close(); }
});

test('a will the ACL denies: CONNACK 0 (as mosquitto 2.0.11), the will is not published; an allowed one is', async () => {
  // mosquitto 2.0.11 with acl_file 'topic readwrite ok/#': CONNACK 0 for a will to 'denied/w', nothing published
  const seen: string[] = [];
  const tb = startTestBroker({ hooks: { authorizePublish: (_c, topic) => { seen.push(topic); return topic.startsWith('ok/'); } } });
  try {
    const w = await connected(tb, { clientId: 'acl-watch' });
    await subscribed(w, '#');
    for (const [topic, published] of [['denied/w', false], ['ok/w', true]] as const) {
      const c = await connected(tb, { clientId: 'acl-will', will: W(topic) });
      c.destroy();
      if (published) assert.equal((await w.next('publish')).topic, topic);
      else await w.nothing(150);
    }
    assert.deepEqual(seen, ['denied/w', 'ok/w'], 'the ACL hook is asked once per will, when it goes out');
    assert.ok(tb.logs.some((l) => l.includes("Denied will of acl-will to 'denied/w'.")));
    w.end();
  } finally { await tb.broker.close(); }
});

test('a will over message_size_limit is refused at CONNECT: CONNACK 5 (3.1.1) / 0x95 (5.0), like mosquitto 2.0.11', async () => {
  const tb = startTestBroker({ messageSizeLimit: 10 });
  try {
    for (const version of [4, 5] as const) {
      const c = RawClient.connectTo(tb, version);
      const ack = await c.connect({ clientId: `big-${version}`, will: W('ok/big', 'x'.repeat(11)) });
      assert.equal(ack.reasonCode, version === 5 ? 0x95 : 5);
      await c.closedByBroker();
      const fits = await connected(tb, { clientId: `fits-${version}`, will: W('ok/fits', 'x'.repeat(10)) }, version);
      fits.end();
    }
    // and a PUBLISH of the same size through the same check
    const p = await connected(tb, { clientId: 'big-pub' }, 5);
    p.send({ type: 'publish', topic: 'ok/big', payload: Buffer.alloc(11), qos: 1, retain: false, dup: false, packetId: 1 });
    assert.equal((await p.next('puback')).reasonCode, 0x95);
    p.end();
  } finally { await tb.broker.close(); }
});

// ---- 4. takeover and the will ----

test('takeover: the old connection\'s will stays quiet when the session continues, and goes out when either side starts clean', async () => {
  // mosquitto 2.0.11 (checked): 3.1.1 c0 -> c0: no will; c1 -> c0: will; c0 -> c1: will; v5 expiry 100 -> clean
  // start 0 expiry 100: no will; expiry 0 -> expiry 100: will; expiry 100 -> clean start 0 expiry 0: no will;
  // expiry 100 -> clean start 1: will
  const tb = startTestBroker();
  try {
    const w = await connected(tb, { clientId: 'tk-watch' });
    await subscribed(w, 'tk/#');
    const exp = (n: number): Partial<ConnectPacket> => ({ properties: { sessionExpiryInterval: n } });
    const rows: Array<[string, 4 | 5, Partial<ConnectPacket>, Partial<ConnectPacket>, boolean]> = [
      ['3.1.1 persistent -> persistent', 4, { clean: false }, { clean: false }, false],
      ['3.1.1 clean -> persistent', 4, { clean: true }, { clean: false }, true],
      ['3.1.1 persistent -> clean', 4, { clean: false }, { clean: true }, true],
      ['5.0 expiry 100 -> clean start 0, expiry 100', 5, { clean: false, ...exp(100) }, { clean: false, ...exp(100) }, false],
      ['5.0 expiry 0 -> clean start 0, expiry 100', 5, { clean: false, ...exp(0) }, { clean: false, ...exp(100) }, true],
      ['5.0 expiry 100 -> clean start 0, expiry 0', 5, { clean: false, ...exp(100) }, { clean: false }, false],
      ['5.0 expiry 100 -> clean start 1', 5, { clean: false, ...exp(100) }, { clean: true, ...exp(100) }, true],
    ];
    let i = 0;
    for (const [name, version, before, after, willSent] of rows) {
      const id = `tk-${i++}`;
      const old = await connected(tb, { clientId: id, will: W('tk/will', name), ...before }, version);
      const next = await connected(tb, { clientId: id, ...after }, version);
      await old.closedByBroker();
      if (willSent) assert.equal((await w.next('publish')).payload.toString(), name, name);
      else await w.nothing(150).catch((e: Error) => { throw new Error(`${name}: ${e.message}`); });
      next.send({ type: 'disconnect' });
      await next.closedByBroker();
    }
    w.end();
  } finally { await tb.broker.close(); }
});

// ---- 5. PUBACK 0x10 no matching subscribers ----

test('5.0: a QoS 1 PUBLISH no subscription matches is acknowledged 0x10; QoS 2 and 3.1.1 unchanged', async () => {
  // mosquitto 2.0.11: PUBACK 0x10 for QoS 1 to 'nobody/here' (also when retained), PUBREC 0x00 for QoS 2,
  // PUBACK 0x00 when a subscription matches
  const tb = startTestBroker();
  try {
    const sub = await connected(tb, { clientId: 'nm-sub' });
    await subscribed(sub, 'nm/some/+', 1);
    const member = await connected(tb, { clientId: 'nm-member' });
    await subscribed(member, '$share/g/nm/shared', 1);
    const p = await connected(tb, { clientId: 'nm-pub' }, 5);
    const pub = (topic: string, qos: 1 | 2, packetId: number, retain = false): void =>
      p.send({ type: 'publish', topic, payload: Buffer.from('x'), qos, retain, dup: false, packetId });
    pub('nobody/here', 1, 1);
    assert.deepEqual(await p.next('puback'), { type: 'puback', packetId: 1, reasonCode: 0x10 });
    pub('nobody/retained', 1, 2, true);
    assert.equal((await p.next('puback')).reasonCode, 0x10);
    assert.ok(tb.broker.retained.get('nobody/retained') !== undefined, 'still retained');
    pub('nm/some/x', 1, 3);
    assert.equal((await p.next('puback')).reasonCode, 0);
    pub('nm/shared', 1, 4); // a shared group with a member is a match
    assert.equal((await p.next('puback')).reasonCode, 0);
    pub('nobody/here', 2, 5);
    assert.equal((await p.next('pubrec')).reasonCode, 0);
    p.send({ type: 'pubrel', packetId: 5 });
    await p.next('pubcomp');
    const old = await connected(tb, { clientId: 'nm-pub4' });
    old.send({ type: 'publish', topic: 'nobody/here', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 9 });
    assert.deepEqual(await old.next('puback'), { type: 'puback', packetId: 9 });
    p.end(); old.end(); sub.end(); member.end();
  } finally { await tb.broker.close(); }
});

// ---- 6. packet identifier 0 ----

test('5.0: packet identifier 0 on PUBLISH QoS 1, SUBSCRIBE, UNSUBSCRIBE or an ack is answered DISCONNECT 0x81', async () => {
  const tb = startTestBroker();
  try {
    const rows: Array<[string, number[]]> = [
      ['PUBLISH QoS 1', [0x32, 0x07, 0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x78]],
      ['PUBLISH QoS 2', [0x34, 0x07, 0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x78]],
      ['SUBSCRIBE', [0x82, 0x07, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61, 0x00]],
      ['UNSUBSCRIBE', [0xa2, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x61]],
      ['PUBACK', [0x40, 0x02, 0x00, 0x00]],
      ['PUBREC', [0x50, 0x02, 0x00, 0x00]],
      ['PUBREL', [0x62, 0x02, 0x00, 0x00]],
      ['PUBCOMP', [0x70, 0x02, 0x00, 0x00]],
    ];
    for (const [name, bytes] of rows) {
      const c = await connected(tb, { clientId: 'id0' }, 5);
      c.sendRaw(bytes);
      assert.equal((await c.next('disconnect')).reasonCode, 0x81, name);
      await c.closedByBroker();
    }
    assert.ok(tb.logs.some((l) => l.includes('disconnected due to malformed packet: PUBLISH with QoS > 0 has packet identifier 0')));
  } finally { await tb.broker.close(); }
});

// ---- 7. re-authentication changes the identity of the read ACL ----

test('re-authentication that returns a username changes the session\'s username, which the read ACL sees', async () => {
  const tb = startTestBroker({
    hooks: {
      authMethods: { 'MIDGE-TEST': testMethod() },
      // each user may read only its own subtree
      authorizeRead: (s, m) => s.username !== undefined && m.topic.startsWith(`${s.username}/`),
    },
  });
  try {
    const c = RawClient.connectTo(tb, 5);
    assert.equal((await c.connect({ clientId: 'reauth-acl', properties: { authenticationMethod: 'MIDGE-TEST', authenticationData: Buffer.from('direct') } })).reasonCode, 0);
    assert.deepEqual(await subscribed(c, '+/x', 0), [0]);
    const p = await connected(tb, { clientId: 'reauth-pub' });
    const send = (topic: string): void => p.send({ type: 'publish', topic, payload: Buffer.from(topic), qos: 0, retain: false, dup: false });
    send('bob/x'); send('alice/x');
    assert.equal((await c.next('publish')).topic, 'alice/x', 'alice reads alice/x only');
    await c.nothing(100);
    c.send({ type: 'auth', reasonCode: 0x19, properties: { authenticationMethod: 'MIDGE-TEST' } });
    assert.equal((await c.next('auth')).reasonCode, 0x18);
    c.send({ type: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'MIDGE-TEST', authenticationData: Buffer.from('ok:bob') } });
    assert.equal((await c.next('auth')).reasonCode, 0);
    send('alice/x'); send('bob/x');
    assert.equal((await c.next('publish')).topic, 'bob/x', 'now bob: bob/x only');
    await c.nothing(100);
    assert.equal(tb.broker.sessions.get('reauth-acl')?.username, 'bob');
    c.end(); p.end();
  } finally { await tb.broker.close(); }
});

// ---- 8. acks for the wrong flow ----

async function inflightTo(tb: TestBroker, id: string, version: 4 | 5, qos: 1 | 2): Promise<{ c: RawClient; packetId: number }> {
  const c = await connected(tb, { clientId: id }, version);
  await subscribed(c, `fl/${id}`, qos);
  tb.broker.publish({ topic: `fl/${id}`, payload: Buffer.from('m'), qos, retain: false });
  const m = await c.next('publish');
  return { c, packetId: m.packetId! };
}

test('PUBCOMP before PUBREC (or for a QoS 1 message), PUBACK for QoS 2 and PUBREC for QoS 1 are protocol errors; unknown ids are not', async () => {
  // mosquitto 2.0.11 (checked): each of the four wrong acks closes the connection; PUBCOMP and PUBACK for an
  // unknown id 77 are ignored, PUBREC 77 is answered PUBREL 77, PUBREL 77 is answered PUBCOMP 77
  const tb = startTestBroker();
  try {
    const wrong: Array<[string, 1 | 2, 'pubcomp' | 'puback' | 'pubrec']> = [
      ['PUBCOMP before PUBREC', 2, 'pubcomp'], ['PUBCOMP for QoS 1', 1, 'pubcomp'], ['PUBACK for QoS 2', 2, 'puback'], ['PUBREC for QoS 1', 1, 'pubrec'],
    ];
    for (const version of [4, 5] as const) {
      for (const [name, qos, type] of wrong) {
        const { c, packetId } = await inflightTo(tb, `wrong-${version}`, version, qos);
        c.send({ type, packetId });
        if (version === 5) assert.equal((await c.next('disconnect')).reasonCode, 0x82, name);
        await c.closedByBroker();
        assert.deepEqual(c.packets, [], name);
      }
    }
    assert.ok(tb.logs.some((l) => l.includes('disconnected due to protocol error: PUBCOMP for packet 1 before its PUBREC')), tb.logs.join('\n'));
    // the normal flow still completes, and unknown ids change nothing
    const { c, packetId } = await inflightTo(tb, 'right', 5, 2);
    c.send({ type: 'pubcomp', packetId: 77 });
    c.send({ type: 'puback', packetId: 78 });
    c.send({ type: 'pubrec', packetId });
    assert.deepEqual(await c.next('pubrel'), { type: 'pubrel', packetId, reasonCode: 0 });
    c.send({ type: 'pubcomp', packetId });
    c.send({ type: 'pingreq' });
    await c.next('pingresp');
    assert.equal(tb.broker.sessions.get('right')!.inflight.size, 0);
    c.end();
  } finally { await tb.broker.close(); }
});

// ---- 9. $SYS publications are not received PUBLISHes ----

test('$SYS/broker/publish/messages/received counts client PUBLISH packets only, not $SYS updates or wills', async () => {
  const tb = startTestBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 1 });
  try {
    await tb.broker.listen(); // starts the $SYS publisher: a first round of ~16 retained $SYS messages
    assert.ok(tb.broker.retained.get('$SYS/broker/version') !== undefined, 'the $SYS round ran');
    assert.equal(tb.broker.stats.publishReceived, 0);
    const c = await connected(tb, { clientId: 'counted', will: W('cnt/will') });
    c.send({ type: 'publish', topic: 'cnt/a', payload: Buffer.from('1'), qos: 0, retain: false, dup: false });
    c.send({ type: 'publish', topic: 'cnt/b', payload: Buffer.from('2'), qos: 1, retain: false, dup: false, packetId: 1 });
    await c.next('puback');
    c.destroy(); // its will goes out: not a received PUBLISH
    await sleep(1100); // another $SYS round
    assert.equal(tb.broker.stats.publishReceived, 2);
    const s = await connected(tb, { clientId: 'sys-count' });
    await subscribed(s, '$SYS/broker/publish/messages/received');
    assert.equal((await s.next('publish')).payload.toString(), '2');
    s.end();
  } finally { await tb.broker.close(); }
});

test('a retained will with retain_available false: 5.0 CONNACK 0x9A, 3.1.1 closed without CONNACK (as mosquitto 2.0.11)', async () => {
  const tb = startTestBroker({ retainAvailable: false });
  try {
    const v5 = RawClient.connectTo(tb, 5);
    assert.equal((await v5.connect({ clientId: 'rw5', will: W('rw/x', 'w', true) })).reasonCode, 0x9a);
    await v5.closedByBroker();
    const v4 = RawClient.connectTo(tb, 4);
    v4.send({ type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 60, clientId: 'rw4', will: W('rw/x', 'w', true) });
    await v4.closedByBroker();
    assert.deepEqual(v4.packets, []);
    // a will without retain is fine
    const ok = await connected(tb, { clientId: 'rw-ok', will: W('rw/x') }, 5);
    ok.end();
  } finally { await tb.broker.close(); }
});
