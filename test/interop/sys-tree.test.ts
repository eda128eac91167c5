/**
 * The `$SYS` tree side by side: Midge and Debian's mosquitto 2.0.11, each with `sys_interval 1` on a free
 * loopback port, read by one subscriber each to `$SYS/#` for a few intervals. Midge must publish every name
 * mosquitto publishes, with a value of the same shape; a deliberate difference is listed below with its reason.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after, test } from 'node:test';
import { connect } from '../../src/index.js';
import { startMidge, startMosquitto, stopAllBrokers, type BrokerProcess } from '../helpers/broker-process.js';
import { killAll } from '../helpers/proc.js';

after(async () => {
  await stopAllBrokers();
  await killAll();
});

/** Names one broker publishes and the other does not, on purpose: name → why. None today. */
const ONLY_MOSQUITTO: Record<string, string> = {};
const ONLY_MIDGE: Record<string, string> = {};

/** Debian's mosquitto(8), whose BROKER STATUS section lists the tree. */
const MAN_PAGE = '/usr/share/man/man8/mosquitto.8.gz';
/** Names the man page lists that neither mosquitto 2.0.11 nor Midge publishes here: name → why. */
const MAN_PAGE_ONLY: Record<string, string> = {
  '$SYS/broker/connection/#': 'bridge status topics: published only for configured bridges (none here)',
  '$SYS/broker/messages/inflight': 'listed, but mosquitto 2.0 no longer publishes it (2.0.11 above does not): Midge follows the broker',
};

/** The names of the man page's BROKER STATUS section; `+` stands for 1min, 5min and 15min. */
function manPageNames(): string[] {
  const text = gunzipSync(readFileSync(MAN_PAGE)).toString('utf8');
  const names = new Set<string>();
  for (const m of text.matchAll(/\\fB(\$SYS\/broker\/[^\\]+)\\fR/g)) {
    const name = m[1]!.replace(/ size$/, ''); // "heap/current size": the topic is heap/current
    if (name.endsWith('/+')) for (const w of ['1min', '5min', '15min']) names.add(name.slice(0, -1) + w);
    else names.add(name);
  }
  return [...names].sort();
}

/** The shape of a value: `12`, `0.25`, `7 seconds`, `<name> version x.y.z`. */
function shape(topic: string, value: string): string {
  if (topic === '$SYS/broker/version') return /^(mosquitto|midge) version \S+$/.test(value) ? 'version' : `bad version ${value}`;
  if (/^\d+ seconds$/.test(value)) return 'seconds';
  if (/^\d+\.\d\d$/.test(value)) return 'load';
  if (/^\d+$/.test(value)) return 'integer';
  return `other: ${value}`;
}

/** Subscribes to $SYS/# and collects topic → last value until `done` says so or `ms` passed; also publishes a little. */
async function collect(broker: BrokerProcess, ms: number, done: (seen: Map<string, string>) => boolean): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const client = await connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: `sys-reader-${broker.pid}`, reconnect: false });
  try {
    client.on('message', (m) => { seen.set(m.topic, m.payload.toString()); });
    await client.subscribe('$SYS/#', { qos: 0 });
    const deadline = Math.round(performance.now()) + ms;
    for (let i = 0; Math.round(performance.now()) < deadline && i < 200; i++) {
      await client.publish('sys-test/traffic', `message ${i}`, { qos: 1 });
      if (done(seen)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.end();
  }
  return seen;
}

test('Midge publishes every $SYS name that mosquitto 2.0.11 publishes, with values of the same shape', { timeout: 60_000 }, async (t) => {
  const conf = 'sys_interval 1\n';
  const [mosquitto, midge] = await Promise.all([startMosquitto({ config: conf }), startMidge({ config: conf })]);
  try {
    // mosquitto 2.0.11 updates every sys_interval + 1 s: 5 s is two updates and more
    const [fromMosquitto, fromMidge] = await Promise.all([
      collect(mosquitto, 5000, () => false),
      collect(midge, 5000, () => false),
    ]);
    const mNames = [...fromMosquitto.keys()].sort();
    const gNames = [...fromMidge.keys()].sort();
    t.diagnostic(`mosquitto published ${mNames.length} names, Midge ${gNames.length}`);
    assert.ok(mNames.length >= 50, `mosquitto's tree (${mNames.length} names):\n${mNames.join('\n')}`);
    const missing = mNames.filter((n) => !fromMidge.has(n) && !(n in ONLY_MOSQUITTO));
    assert.deepEqual(missing, [], 'names mosquitto publishes and Midge does not');
    const extra = gNames.filter((n) => !fromMosquitto.has(n) && !(n in ONLY_MIDGE));
    assert.deepEqual(extra, [], 'names Midge publishes and mosquitto does not');
    for (const n of mNames) {
      if (!fromMidge.has(n)) continue;
      assert.equal(shape(n, fromMidge.get(n)!), shape(n, fromMosquitto.get(n)!), `${n}: Midge '${fromMidge.get(n)}', mosquitto '${fromMosquitto.get(n)}'`);
    }
    // both saw this test's reader connected and its traffic
    for (const [name, seen] of [['mosquitto', fromMosquitto], ['Midge', fromMidge]] as const) {
      assert.ok(Number(seen.get('$SYS/broker/clients/connected')) >= 1, `${name} clients/connected`);
      assert.ok(Number(seen.get('$SYS/broker/load/connections/1min')) > 0, `${name} load/connections/1min`);
      assert.ok(Number(seen.get('$SYS/broker/messages/received')) >= 3, `${name} messages/received`);
    }
    assert.ok(Number(fromMidge.get('$SYS/broker/publish/messages/received')) >= 3, 'Midge publish/messages/received');

    // and every name of mosquitto(8)'s list
    if (!existsSync(MAN_PAGE)) { t.diagnostic(`${MAN_PAGE} is not installed: the man page's list is not checked`); return; }
    const listed = manPageNames();
    t.diagnostic(`mosquitto(8) lists ${listed.length} names`);
    assert.ok(listed.length >= 45, `the man page lists ${listed.length} names`);
    for (const n of Object.keys(MAN_PAGE_ONLY)) assert.ok(listed.includes(n), `${n} is in the man page`);
    assert.deepEqual(listed.filter((n) => !fromMidge.has(n) && !(n in MAN_PAGE_ONLY)), [], 'names mosquitto(8) lists and Midge does not publish');
  } finally {
    await Promise.all([mosquitto.stop(), midge.stop()]);
  }
});
