/**
 * The examples/ scripts (TypeScript versions of the walkthrough's paho scripts) against Debian's mosquitto.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Proc, removeDir, run, sleep, startMosquitto, waitFor, type Broker } from './_helpers.js';

const example = (name: string): string => fileURLToPath(new URL(`../../examples/${name}.js`, import.meta.url));
let broker: Broker;
let P: string;
const procs: Proc[] = [];

before(async () => {
  broker = await startMosquitto();
  P = String(broker.port);
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await broker.stop();
  removeDir(broker.dir);
});

/** mosquitto_sub -v on 'test', ready once the broker logged its subscription */
async function watch(count: number): Promise<Proc> {
  const before = broker.log().split('test (QoS 0)').length;
  const p = new Proc('mosquitto_sub', ['-p', P, '-t', 'test', '-v', '-C', String(count)]);
  procs.push(p);
  await waitFor(() => broker.log().split('test (QoS 0)').length > before, 5000, 'mosquitto_sub to subscribe');
  return p;
}

test('the publisher prints rc and mid, and the durable subscriber gets what was sent while it was away', async () => {
  const sub = new Proc(process.execPath, [example('subscriber'), P]);
  procs.push(sub);
  await waitFor(() => broker.log().includes('test (QoS 1)'), 5000, 'client03 to subscribe');
  const first = await run(process.execPath, [example('publisher'), P]);
  assert.deepEqual([first.code, first.stdout], [0, 'rc: 0\nmid: 1\n']);
  // (the last of its three lines: they may come in more than one chunk; the CI of f9c2890 read two of them)
  await sub.waitForOutput('qos: 1\n');
  assert.equal(sub.stdout, 'topic: test\npayload: abc\nqos: 1\n');
  await sub.stop();
  for (let i = 0; i < 2; i++) assert.equal((await run(process.execPath, [example('publisher'), P])).code, 0);
  const back = new Proc(process.execPath, [example('subscriber'), P]);
  procs.push(back);
  await waitFor(() => back.lines().length === 6, 5000, 'both messages kept for client03');
  assert.equal(back.stdout, 'topic: test\npayload: abc\nqos: 1\n'.repeat(2));
  await back.stop();
});

test('a retained message reaches a subscriber that comes later', async () => {
  const r = await run(process.execPath, [example('retain'), P]);
  assert.deepEqual([r.code, r.stdout], [0, 'rc: 0\nmid: 1\n']);
  const late = await run('mosquitto_sub', ['-p', P, '-t', 'test', '-C', '1', '-F', '%r %p']);
  assert.equal(late.stdout, '1 retain message\n');
  await run('mosquitto_pub', ['-p', P, '-t', 'test', '-n', '-r']);
});

test('the will is not published after a DISCONNECT, and is when the process ends without one', async () => {
  const polite = await watch(2);
  assert.equal((await run(process.execPath, [example('will'), P, 'disconnect'])).code, 0);
  await sleep(300);
  assert.equal(polite.stdout, 'test abc\n');
  await polite.stop();

  const rude = await watch(2);
  assert.equal((await run(process.execPath, [example('will'), P, 'exit'])).code, 0);
  assert.equal((await rude.wait(5000)).code, 0);
  assert.equal(rude.stdout, 'test abc\ntest will message\n');
});

test('a client that answers keepalive never has its will published', async () => {
  const w = await watch(2);
  // keepalive comes from MQTT_KEEPALIVE in the environment of the spawned script
  const looping = Proc.fromEnv(process.execPath, [example('will'), P, 'loop'], { MQTT_KEEPALIVE: '1' });
  procs.push(looping);
  await waitFor(() => (broker.log().match(/Received PINGREQ from client04/g) ?? []).length >= 2, 6000, 'two keepalive rounds');
  await looping.stop();
  await sleep(300);
  assert.ok(!w.stdout.includes('will message'), w.stdout);
});
