/**
 * Abuse 07: SIGHUP reloads under load. Six publishers send QoS 1 messages as fast as their PUBACKs come
 * back, a persistent subscriber takes them all, and meanwhile the password and ACL files are changed
 * and the broker is sent SIGHUP five times: a user is added each time (it can log in, and its new ACL
 * line lets it publish and subscribe), a connected publisher's password is changed (it stays connected,
 * its old password no longer logs in, the new one does). No client is dropped, no message is lost, and
 * the broker's RSS stays under a stated bound.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { MIDGE_MAIN, startMidge, type BrokerProcess } from '../helpers/broker-process.js';
import { connect as mqttjsConnect } from '../helpers/mqttjs.js';
import { run } from '../helpers/proc.js';
import { Bystander, RawClient, connectPacket, isAlive, memOf, mib, pollUntil, sampleRss, sleep, within } from './_helpers.js';

const PUBLISHERS = 6;
const RELOADS = 5;
const RELOAD_GAP_MS = 1500;
/** stated bound: the broker's peak RSS grows by less than this over its RSS before the load */
const PEAK_GROWTH_BOUND_KIB = 48 * 1024;
const RELOADED = /Reloaded password, ACL and certificate files\./;

/** Hashed password-file lines for `user:password` pairs, made by `midge passwd -U` (one process for all). */
async function hashed(dir: string, pairs: Array<[string, string]>): Promise<Map<string, string>> {
  const file = join(dir, 'plain');
  writeFileSync(file, pairs.map(([u, p]) => `${u}:${p}\n`).join(''));
  const r = await run(process.execPath, [MIDGE_MAIN, 'passwd', '-U', file], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `midge passwd -U: ${r.stderr}`);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  rmSync(file);
  return new Map(lines.map((l) => [l.slice(0, l.indexOf(':')), l]));
}

/** The CONNACK code a login gets (a raw 3.1.1 CONNECT). */
async function login(port: number, username: string, password: string): Promise<number> {
  const c = await RawClient.open(port);
  try {
    c.send(connectPacket(`login-${username}-${Math.random().toString(36).slice(2, 8)}`, { username, password: Buffer.from(password) }));
    const ack = await c.waitFor((p) => p.type === 'connack', 5000, `CONNACK for ${username}`);
    return ack.type === 'connack' ? ack.reasonCode : -1;
  } finally {
    c.destroy();
  }
}

describe('abuse 07: SIGHUP reloads under load', { timeout: 90_000 }, () => {
  let broker: BrokerProcess;
  let dir: string;
  let bystander: Bystander;
  const clients: MqttClient[] = [];

  const users = ['by', 'load-sub', ...Array.from({ length: PUBLISHERS }, (_, k) => `L${k}`)];
  const newUsers = Array.from({ length: RELOADS }, (_, i) => `new${i + 1}`);
  let lines: Map<string, string>;
  let rotated: string;

  /** the password and ACL files after reload `i` (0: the initial ones) */
  function writeFiles(i: number): void {
    const pw = users.map((u) => (u === 'L0' && i >= 3 ? rotated : lines.get(u)!));
    for (let j = 1; j <= i; j++) pw.push(lines.get(`new${j}`)!);
    writeFileSync(join(dir, 'passwd'), `${pw.join('\n')}\n`);
    let acl = 'user by\ntopic readwrite bystander-07/#\nuser load-sub\ntopic read load/#\n';
    for (let k = 0; k < PUBLISHERS; k++) acl += `user L${k}\ntopic write load/${k}\n`;
    for (let j = 1; j <= i; j++) acl += `user new${j}\ntopic readwrite new/${j}\n`;
    writeFileSync(join(dir, 'acl'), acl);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'midge-abuse-07-'));
    lines = await hashed(dir, [['by', 'bypass'], ['load-sub', 'subpass'],
      ...Array.from({ length: PUBLISHERS }, (_, k): [string, string] => [`L${k}`, 'old']),
      ...newUsers.map((u, i): [string, string] => [u, `p${i + 1}`])]);
    rotated = (await hashed(dir, [['L0', 'rotated']])).get('L0')!;
    writeFiles(0);
    broker = await startMidge({ config: `allow_anonymous false\npassword_file ${join(dir, 'passwd')}\nacl_file ${join(dir, 'acl')}\nmidge_failed_login_delay 0\n` });
    bystander = await Bystander.start(broker.port, '07', { username: 'by', password: 'bypass' });
  });
  after(async () => {
    await Promise.all([...clients.map((c) => c.endAsync(true)), bystander?.pub.endAsync(true), bystander?.sub.endAsync(true)]);
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${RELOADS} reloads while ${PUBLISHERS} publishers run: nobody dropped, nothing lost, new passwords in force`, async (t) => {
    const dropped: string[] = [];
    const watch = (c: MqttClient, name: string): MqttClient => {
      c.on('close', () => dropped.push(name));
      clients.push(c);
      return c;
    };
    const sub = watch(await mqttjsConnect(broker.port, { clientId: 'load-sub-07', clean: false, username: 'load-sub', password: 'subpass' }), 'load-sub');
    const got = Array.from({ length: PUBLISHERS }, () => [] as number[]);
    sub.on('message', (topic, payload) => { got[Number(topic.split('/')[1])]!.push(Number(payload.toString())); });
    const granted = await sub.subscribeAsync('load/#', { qos: 1 });
    assert.equal(granted[0]?.qos, 1, 'the load subscriber may read load/#');
    const pubs: MqttClient[] = [];
    for (let k = 0; k < PUBLISHERS; k++) {
      pubs.push(watch(await mqttjsConnect(broker.port, { clientId: `L${k}-07`, username: `L${k}`, password: 'old' }), `L${k}`));
    }

    const m0 = memOf(broker.pid);
    const sampler = sampleRss(broker.pid);
    const bystanderPump = bystander.startPump();
    let stop = false;
    const sent = new Array<number>(PUBLISHERS).fill(0);
    const loops = pubs.map(async (p, k) => {
      while (!stop) {
        await within(p.publishAsync(`load/${k}`, String(sent[k]), { qos: 1 }), 15_000, `PUBACK for load/${k} #${sent[k]}`);
        sent[k]!++;
      }
    });

    const checks: string[] = [];
    for (let i = 1; i <= RELOADS; i++) {
      await sleep(RELOAD_GAP_MS);
      writeFiles(i);
      const before = broker.logs().split('\n').filter((l) => RELOADED.test(l)).length;
      process.kill(broker.pid, 'SIGHUP');
      const reloaded = await pollUntil(() => broker.logs().split('\n').filter((l) => RELOADED.test(l)).length > before, 5000, 20);
      assert.ok(reloaded, `reload ${i} logged "Reloaded password, ACL and certificate files."\n${broker.logs().slice(-2000)}`);
      // the new user logs in, and its ACL line lets it subscribe and publish to new/i
      const u = await mqttjsConnect(broker.port, { clientId: `new${i}-07`, username: `new${i}`, password: `p${i}` });
      const g = await u.subscribeAsync(`new/${i}`, { qos: 1 });
      assert.equal(g[0]?.qos, 1, `new${i} may subscribe to new/${i} after reload ${i}`);
      const echo = new Promise<string>((resolve) => u.once('message', (_t, m) => resolve(m.toString())));
      await u.publishAsync(`new/${i}`, `hello ${i}`, { qos: 1 });
      assert.equal(await within(echo, 5000, `new${i}'s own message`), `hello ${i}`);
      await u.endAsync();
      assert.notEqual(await login(broker.port, `new${i}`, 'wrong'), 0, `new${i} with a wrong password is refused`);
      if (i < RELOADS) assert.notEqual(await login(broker.port, `new${i + 1}`, `p${i + 1}`), 0, `new${i + 1} is refused before its reload`);
      const l0old = (await login(broker.port, 'L0', 'old')) === 0;
      const l0new = (await login(broker.port, 'L0', 'rotated')) === 0;
      assert.deepEqual({ old: l0old, rotated: l0new }, i >= 3 ? { old: false, rotated: true } : { old: true, rotated: false }, `reload ${i}: L0 logs in with ${i >= 3 ? 'the rotated password only' : 'the old password only'}`);
      checks.push(`reload ${i}: new${i} in (publish+subscribe by its new ACL line), L0 ${i >= 3 ? 'rotated' : 'old'}`);
    }

    stop = true;
    await Promise.all(loops);
    const by = await bystanderPump.stop();
    const delivered = await pollUntil(() => got.every((g, k) => g.length >= sent[k]!), 20_000);
    const m1 = memOf(broker.pid);
    const peak = sampler.stop();

    t.diagnostic(`${RELOADS} reloads, one every ${RELOAD_GAP_MS} ms; ${checks.length} checked`);
    t.diagnostic(`load: ${sent.reduce((a, b) => a + b, 0)} QoS 1 messages from ${PUBLISHERS} publishers (${sent.join(', ')}); received ${got.map((g) => g.length).join(', ')}`);
    t.diagnostic(`broker RSS before ${mib(m0.rss)}, after ${mib(m1.rss)}, peak VmHWM ${mib(m1.hwm)} (sampled max ${mib(peak)}); bound: peak < before + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    t.diagnostic(`bystander: ${by.published} QoS 1 messages, all delivered in order, slowest PUBACK ${by.maxPubackMs} ms`);

    assert.ok(isAlive(broker.pid), 'the broker process is alive');
    assert.deepEqual(dropped, [], 'no client was dropped');
    assert.ok(delivered, 'every message reached the subscriber');
    got.forEach((g, k) => assert.deepEqual(g, Array.from({ length: sent[k]! }, (_, n) => n), `publisher L${k}: every message once, in order`));
    assert.ok(m1.hwm - m0.rss < PEAK_GROWTH_BOUND_KIB, `peak RSS ${mib(m1.hwm)} is under ${mib(m0.rss)} + ${mib(PEAK_GROWTH_BOUND_KIB)}`);
    await bystander.roundTrip();
  });
});
