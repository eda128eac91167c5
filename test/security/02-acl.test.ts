/**
 * The ACL matrix against the broker process: users, `pattern` rules with %c and %u, anonymous rules,
 * `$SYS`, retained messages and wills. Every case has an allowed client that receives in the same test
 * as the denied one that does not, so no test can pass because nothing was delivered at all.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { closeAllClients, collect, connect, expectNoMessage, waitForPacket } from '../helpers/mqttjs.js';
import { hashPassword } from '../../src/auth/password-file.js';
import { midge, T } from './_util.js';

const ACL = `# anonymous clients: the rules before any user line
topic read public/#
topic write anon/out

user alice
topic readwrite alice/#
topic deny alice/secret
topic read shared/#

user bob
topic write shared/#
topic read bob/#

user admin
topic readwrite #
topic read $SYS/#

# every client
pattern readwrite devices/%c/#
pattern read users/%u/inbox
`;

let dir: string;
let broker: BrokerProcess;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'midge-acl-'));
  const users = await Promise.all(['alice', 'bob', 'admin'].map(async (u) => `${u}:${await hashPassword(`${u}-pw`)}\n`));
  writeFileSync(join(dir, 'passwd'), users.join(''));
  writeFileSync(join(dir, 'acl'), ACL);
  broker = await midge(['listener {port} 127.0.0.1', 'allow_anonymous true', `password_file ${join(dir, 'passwd')}`,
    `acl_file ${join(dir, 'acl')}`, 'sys_interval 1'], false);
});
after(async () => {
  await stopAllBrokers();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(closeAllClients);

let n = 0;
/** A client logged in as `user` (anonymous when undefined), with a unique client id unless one is given. */
function as(user: string | undefined, clientId = `${user ?? 'anon'}-${++n}`, protocolVersion: 3 | 4 | 5 = 4): Promise<MqttClient> {
  return connect(broker.port, {
    clientId, protocolVersion,
    ...(user !== undefined ? { username: user, password: `${user}-pw` } : {}),
  });
}

/** Subscribes and returns the SUBACK return codes (MQTT.js rejects on a failure code: its SUBACK is in the error). */
async function sub(c: MqttClient, filter: string, qos: 0 | 1 = 0): Promise<number[]> {
  try {
    const granted = await c.subscribeAsync(filter, { qos });
    return granted.map((g) => g.qos as number);
  } catch (err) {
    const granted = (err as { packet?: { granted?: Array<number | { qos: number }> } }).packet?.granted;
    if (granted === undefined) throw err;
    return granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

async function pub(c: MqttClient, topic: string, payload: string, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
  await c.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
}

const topics = (msgs: Array<{ topic: string; payload: string }>): string[] => msgs.map((m) => `${m.topic} ${m.payload}`);

describe('ACL: users, deny rules, patterns and anonymous clients', () => {
  test('bob writes shared/news: alice (read shared/#) receives it, an anonymous subscriber to # does not', T, async () => {
    const alice = await as('alice');
    const anon = await as(undefined);
    assert.deepEqual(await sub(alice, 'shared/#'), [0]);
    assert.deepEqual(await sub(anon, '#'), [0], 'granted: anonymous clients may read public/#');
    assert.deepEqual(await sub(anon, 'shared/#'), [0x80], 'nothing under shared/ is readable anonymously');
    const bob = await as('bob');
    await pub(bob, 'shared/news', 'n1');
    assert.deepEqual(topics(await collect(alice, 1)), ['shared/news n1']);
    await pub(bob, 'public/x', 'not allowed for bob');
    await expectNoMessage(anon, 300);
    await expectNoMessage(alice, 0);
  });

  test('deny beats readwrite: alice/secret is neither written by alice nor read by her; alice/ok is', T, async () => {
    const admin = await as('admin');
    const alice = await as('alice');
    assert.deepEqual(await sub(admin, 'alice/#'), [0]);
    assert.deepEqual(await sub(alice, 'alice/#'), [0]);
    await pub(alice, 'alice/secret', 'from alice');
    await pub(alice, 'alice/ok', 'from alice');
    assert.deepEqual(topics(await collect(admin, 1)), ['alice/ok from alice'], 'the denied publish came first and was dropped');
    assert.deepEqual(topics(await collect(alice, 1)), ['alice/ok from alice']);
    await pub(admin, 'alice/secret', 'from admin');
    await pub(admin, 'alice/ok', 'from admin');
    assert.deepEqual(topics(await collect(alice, 1)), ['alice/ok from admin'], 'alice may not read alice/secret');
    assert.deepEqual(topics(await collect(admin, 2)), ['alice/secret from admin', 'alice/ok from admin']);
  });

  test('pattern %c: devices/dev1/# belongs to client dev1 only', T, async () => {
    const dev1 = await as(undefined, 'dev1');
    const dev2 = await as(undefined, 'dev2');
    assert.deepEqual(await sub(dev1, 'devices/dev1/#'), [0]);
    assert.deepEqual(await sub(dev2, 'devices/+/cmd'), [0], 'granted: it overlaps devices/dev2/#');
    assert.deepEqual(await sub(dev2, 'devices/dev1/#'), [0x80]);
    const admin = await as('admin');
    await pub(admin, 'devices/dev1/cmd', 'for dev1');
    await pub(admin, 'devices/dev2/cmd', 'for dev2');
    assert.deepEqual(topics(await collect(dev1, 1)), ['devices/dev1/cmd for dev1']);
    assert.deepEqual(topics(await collect(dev2, 1)), ['devices/dev2/cmd for dev2'], 'dev2 never gets dev1\'s message');
    // dev2 may not write into dev1's tree
    await pub(dev2, 'devices/dev1/cmd', 'forged by dev2');
    await pub(dev2, 'devices/dev2/cmd', 'own');
    assert.deepEqual(topics(await collect(dev2, 1)), ['devices/dev2/cmd own']);
    await expectNoMessage(dev1, 200);
  });

  test('pattern %u: users/<name>/inbox is read by that user only; anonymous clients get no %u rule', T, async () => {
    const alice = await as('alice');
    const bob = await as('bob');
    const anon = await as(undefined);
    assert.deepEqual(await sub(alice, 'users/alice/inbox'), [0]);
    assert.deepEqual(await sub(bob, 'users/+/inbox'), [0]);
    assert.deepEqual(await sub(anon, 'users/+/inbox'), [0x80]);
    const admin = await as('admin');
    await pub(admin, 'users/alice/inbox', 'hi alice');
    await pub(admin, 'users/bob/inbox', 'hi bob');
    assert.deepEqual(topics(await collect(alice, 1)), ['users/alice/inbox hi alice']);
    assert.deepEqual(topics(await collect(bob, 1)), ['users/bob/inbox hi bob']);
    await expectNoMessage(alice, 200);
  });

  test('anonymous clients: read public/#, write anon/out, and nothing else', T, async () => {
    const anon = await as(undefined);
    const admin = await as('admin');
    assert.deepEqual(await sub(admin, 'anon/#'), [0]);
    assert.deepEqual(await sub(admin, 'public/#'), [0]);
    assert.deepEqual(await sub(anon, 'public/#'), [0]);
    await pub(anon, 'public/x', 'anon may not write here');
    await pub(anon, 'anon/out', 'allowed');
    assert.deepEqual(topics(await collect(admin, 1)), ['anon/out allowed']);
    await pub(admin, 'public/x', 'from admin');
    assert.deepEqual(topics(await collect(anon, 1)), ['public/x from admin']);
    assert.deepEqual(topics(await collect(admin, 1)), ['public/x from admin']);
  });

  test('$SYS: readable only with a rule naming $SYS; nobody publishes to it', T, async () => {
    const admin = await as('admin');
    const alice = await as('alice');
    assert.deepEqual(await sub(alice, '$SYS/#'), [0x80]);
    assert.deepEqual(await sub(admin, '$SYS/broker/clients/connected'), [0]);
    const [m] = await collect(admin, 1, 3000);
    assert.equal(m!.topic, '$SYS/broker/clients/connected');
    const watcher = await as('admin');
    assert.deepEqual(await sub(watcher, '$SYS/test/#'), [0]);
    assert.deepEqual(await sub(watcher, 'admin/marker'), [0]);
    await pub(admin, '$SYS/test/forged', 'nobody writes $SYS');
    await pub(admin, 'admin/marker', 'after the forged one');
    assert.deepEqual(topics(await collect(watcher, 1)), ['admin/marker after the forged one']);
    await expectNoMessage(alice, 0);
  });
});

describe('ACL: retained messages and wills', () => {
  test('a retained message is sent to a new subscriber only when its read rules allow it', T, async () => {
    const admin = await as('admin');
    await pub(admin, 'shared/ret/r1', 'for readers of shared', { retain: true });
    await pub(admin, 'bob/ret/r2', 'for bob', { retain: true });
    const alice = await as('alice');
    const bob = await as('bob');
    assert.deepEqual(await sub(alice, '+/ret/#'), [0]);
    assert.deepEqual(await sub(bob, '+/ret/#'), [0]);
    const a = await collect(alice, 1);
    assert.deepEqual(topics(a), ['shared/ret/r1 for readers of shared']);
    assert.equal(a[0]!.retain, true);
    assert.deepEqual(topics(await collect(bob, 1)), ['bob/ret/r2 for bob']);
    await expectNoMessage(alice, 300);
    await expectNoMessage(bob, 0);
    await pub(admin, 'shared/ret/r1', '', { retain: true });
    await pub(admin, 'bob/ret/r2', '', { retain: true });
  });

  test('a will is published only where its client may write', T, async () => {
    const admin = await as('admin');
    assert.deepEqual(await sub(admin, '+/will'), [0]);
    const denied = await connect(broker.port, { clientId: 'bob-w1', username: 'bob', password: 'bob-pw', will: { topic: 'alice/will', payload: Buffer.from('bob may not write alice/'), qos: 0, retain: false } });
    const allowed = await connect(broker.port, { clientId: 'bob-w2', username: 'bob', password: 'bob-pw', will: { topic: 'shared/will', payload: Buffer.from('allowed will'), qos: 0, retain: false } });
    denied.stream.destroy();
    await broker.waitForLog(/Denied will of bob-w1 to 'alice\/will'/, 3000);
    allowed.stream.destroy();
    assert.deepEqual(topics(await collect(admin, 1)), ['shared/will allowed will']);
    await expectNoMessage(admin, 200);
  });
});

describe('ACL: what a denied client is told', () => {
  test('MQTT 5: a denied SUBSCRIBE gets 0x87 and a denied QoS 1 PUBLISH gets PUBACK 0x87', T, async () => {
    const alice = await as('alice', 'alice-v5', 5);
    assert.deepEqual(await sub(alice, 'bob/#'), [0x87]);
    const admin = await as('admin');
    assert.deepEqual(await sub(admin, 'bob/#'), [0]);
    await alice.publishAsync('bob/x', 'denied', { qos: 1 }).catch(() => undefined);
    await waitForPacket(alice, (p) => p.dir === 'in' && p.cmd === 'puback');
    await pub(alice, 'alice/x', 'allowed');
    await expectNoMessage(admin, 300);
  });

  test('MQTT 3.1.1: a denied QoS 1 PUBLISH is acknowledged and not delivered', T, async () => {
    const bob = await as('bob');
    const admin = await as('admin');
    assert.deepEqual(await sub(admin, 'alice/from-bob/#'), [0]);
    assert.deepEqual(await sub(admin, 'shared/from-bob'), [0]);
    await pub(bob, 'alice/from-bob/x', 'denied');
    await waitForPacket(bob, (p) => p.dir === 'in' && p.cmd === 'puback');
    await pub(bob, 'shared/from-bob', 'allowed');
    assert.deepEqual(topics(await collect(admin, 1)), ['shared/from-bob allowed']);
  });
});
