/**
 * MQTT over WebSockets with clients nobody here wrote: MQTT.js 5 over ws:// and wss://, Debian's paho-mqtt
 * 1.6.1 (transport="websockets") over ws:// and wss://, and Midge's own client library over ws://. Each
 * publishes to a TCP subscriber (mosquitto_sub) and receives from a TCP publisher (mosquitto_pub), at
 * QoS 0, 1 and 2. One `midge broker` process serves the file: TCP, ws:// and wss:// listeners.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { killAll, spawnLines, type LineProcess } from '../helpers/proc.js';
import { closeAllClients, collect, connect as mqttjs } from '../helpers/mqttjs.js';
import { mosquittoPub, PYTHON, untilSubscribed } from '../interop/walkthrough.js';
import { makePki, tlsLines, type Pki } from '../security/_pki.js';
import { connect as midgeConnect, type Message } from '../../src/index.js';
import { startWsBroker, type WsBroker } from './_ws.js';

const T = { timeout: 20_000 };
type QoS = 0 | 1 | 2;
const QOS: QoS[] = [0, 1, 2];

let pki: Pki;
let b: WsBroker;
const scripts = mkdtempSync(join(tmpdir(), 'midge-ws-paho-'));

before(async () => {
  pki = await makePki();
  b = await startWsBroker([[], tlsLines(pki)]);
});
after(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
  pki.remove();
  rmSync(scripts, { recursive: true, force: true });
});

/** mosquitto_sub over TCP printing "QOS PAYLOAD", shown to be subscribed. */
async function tcpSubscriber(topic: string, qos: QoS): Promise<LineProcess> {
  const sub = spawnLines('mosquitto_sub', ['-p', String(b.port), '-t', topic, '-q', String(qos), '-F', '%q %p']);
  await untilSubscribed(b.port, sub, topic);
  return sub;
}

const transports = [
  { name: 'ws://', port: () => b.wsPorts[0]!, opts: () => ({ protocol: 'ws' as const, path: '/mqtt' }) },
  { name: 'wss://', port: () => b.wsPorts[1]!, opts: () => ({ protocol: 'wss' as const, path: '/mqtt', ca: readFileSync(pki.ca), servername: 'localhost' }) },
];

describe('MQTT.js over WebSockets', () => {
  for (const t of transports) {
    for (const qos of QOS) {
      test(`MQTT.js over ${t.name} publishes at QoS ${qos} to mosquitto_sub over TCP`, T, async () => {
        const topic = `mqttjs/${t.name.slice(0, -3)}/out/${qos}`;
        const sub = await tcpSubscriber(topic, qos);
        const client = await mqttjs(t.port(), { ...t.opts(), clientId: `mqttjs-out-${qos}-${t.name.length}` });
        await client.publishAsync(topic, `from ${t.name} q${qos}`, { qos });
        await sub.waitForLine(new RegExp(`^${qos} from ${t.name.replace(/\//g, '\\/')} q${qos}$`), 3000);
        sub.kill();
        await client.endAsync();
      });

      test(`MQTT.js over ${t.name} receives at QoS ${qos} what mosquitto_pub publishes over TCP`, T, async () => {
        const topic = `mqttjs/${t.name.slice(0, -3)}/in/${qos}`;
        const client = await mqttjs(t.port(), { ...t.opts(), clientId: `mqttjs-in-${qos}-${t.name.length}` });
        const granted = await client.subscribeAsync(topic, { qos });
        assert.equal(granted[0]!.qos, qos);
        await mosquittoPub(b.port, ['-t', topic, '-q', String(qos), '-m', `to ${t.name} q${qos}`]);
        const [m] = await collect(client, 1);
        assert.deepEqual({ topic: m!.topic, payload: m!.payload, qos: m!.qos }, { topic, payload: `to ${t.name} q${qos}`, qos });
        await client.endAsync();
      });
    }
  }

  test('the broker logs a WebSocket client as it logs a TCP one (-v): New connection, New client connected', T, async () => {
    const client = await mqttjs(b.wsPorts[0]!, { protocol: 'ws', path: '/mqtt', clientId: 'log-check' });
    const line = await b.broker.waitForLog(/New client connected from 127\.0\.0\.1:\d+ as log-check \(p2, c1, k60\)\./);
    const port = /:(\d+) as/.exec(line)![1];
    assert.match(b.broker.logs(), new RegExp(`New connection from 127\\.0\\.0\\.1:${port} on port ${b.wsPorts[0]}\\.`));
    assert.match(b.broker.logs(), new RegExp(`Opening websockets listen socket on port ${b.wsPorts[0]}\\.`));
    await client.endAsync();
    await b.broker.waitForLog(/Client log-check \[127\.0\.0\.1:\d+\] disconnected\./);
  });
});

/**
 * paho-mqtt over WebSockets: subscribes to paho/in/QOS, prints what it gets, then publishes to
 * paho/out/QOS and waits until the publish completes. Every wait is bounded.
 */
const PAHO = `import sys, threading
import paho.mqtt.client as mqtt
port, qos, scheme = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = threading.Event()
def on_connect(c, u, flags, rc):
    print('connected', rc, flush=True)
    c.subscribe('paho/in/%d' % qos, qos)
def on_subscribe(c, u, mid, granted):
    print('subscribed', granted[0], flush=True)
def on_message(c, u, m):
    print('got', m.topic, m.qos, m.payload.decode(), flush=True)
    got.set()
c = mqtt.Client(client_id='paho-%s-%d' % (scheme, qos), transport='websockets')
c.ws_set_options(path='/mqtt')
if scheme == 'wss':
    c.tls_set(ca_certs=sys.argv[4])
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect('127.0.0.1', port, keepalive=10)
c.loop_start()
if not got.wait(10):
    print('no message', flush=True)
    sys.exit(1)
info = c.publish('paho/out/%d' % qos, 'from paho %s q%d' % (scheme, qos), qos)
info.wait_for_publish(5)
print('published', info.rc, info.is_published(), flush=True)
c.disconnect()
c.loop_stop()
`;

describe('paho-mqtt 1.6.1 (transport="websockets")', () => {
  for (const scheme of ['ws', 'wss'] as const) {
    for (const qos of QOS) {
      test(`paho over ${scheme}:// receives at QoS ${qos} from mosquitto_pub and publishes at QoS ${qos} to mosquitto_sub, both over TCP`, T, async () => {
        const out = await tcpSubscriber(`paho/out/${qos}`, qos);
        const file = join(scripts, 'paho_ws.py');
        writeFileSync(file, PAHO);
        const port = scheme === 'ws' ? b.wsPorts[0]! : b.wsPorts[1]!;
        const paho = spawnLines(PYTHON, ['-u', file, String(port), String(qos), scheme, pki.ca]);
        await paho.waitForLine(/^connected 0$/, 5000);
        await paho.waitForLine(new RegExp(`^subscribed ${qos}$`), 5000);
        await mosquittoPub(b.port, ['-t', `paho/in/${qos}`, '-q', String(qos), '-m', `to paho q${qos}`]);
        await paho.waitForLine(new RegExp(`^got paho/in/${qos} ${qos} to paho q${qos}$`), 5000);
        await paho.waitForLine(/^published 0 True$/, 5000);
        await out.waitForLine(new RegExp(`^${qos} from paho ${scheme} q${qos}$`), 3000);
        assert.equal((await paho.exited).code, 0, paho.stderr());
        out.kill();
      });
    }
  }
});

describe("Midge's client library over ws://", () => {
  for (const qos of QOS) {
    test(`connect('ws://...') publishes at QoS ${qos} to mosquitto_sub and receives at QoS ${qos} from mosquitto_pub`, T, async () => {
      const out = await tcpSubscriber(`midge/out/${qos}`, qos);
      const client = await midgeConnect(`ws://127.0.0.1:${b.wsPorts[0]}/mqtt`, { clientId: `midge-ws-${qos}`, reconnect: false });
      try {
        const got: Message[] = [];
        client.on('message', (m: Message) => got.push(m));
        assert.equal(await client.subscribe(`midge/in/${qos}`, { qos }), qos);
        await client.publish(`midge/out/${qos}`, `from midge q${qos}`, { qos });
        await out.waitForLine(new RegExp(`^${qos} from midge q${qos}$`), 3000);
        await mosquittoPub(b.port, ['-t', `midge/in/${qos}`, '-q', String(qos), '-m', `to midge q${qos}`]);
        const deadline = Math.round(performance.now()) + 3000;
        while (got.length === 0 && Math.round(performance.now()) < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(got.length, 1, 'one message');
        assert.deepEqual([got[0]!.topic, got[0]!.payload.toString(), got[0]!.qos], [`midge/in/${qos}`, `to midge q${qos}`, qos]);
      } finally {
        await client.end();
        out.kill();
      }
    });
  }
});
