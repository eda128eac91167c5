/**
 * What the MQTT 5 interop tests share: paho 1.6.1 (MQTTv5) driven line by line through a small Python
 * program, mosquitto_pub / mosquitto_sub with -V mqttv5, MQTT.js v5 shortcuts, and the cleanup.
 * Every wait is bounded and every process is tracked by PID (helpers/proc.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import { brokerKind, stopAllBrokers } from '../helpers/broker-process.js';
import { closeAllClients, connect, packets } from '../helpers/mqttjs.js';
import { exitOf, killAll, run, spawnLines, spawnTracked, Waiters, type LineProcess, type RunResult } from '../helpers/proc.js';
import { closeAllRaw } from './_wire.js';

export const PYTHON = '/usr/bin/python3';
export const T = { timeout: 30_000 };
export const isMosquitto = brokerKind === 'mosquitto';
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Test options that skip the test against mosquitto, saying how mosquitto 2.0.11 differs (checked by
 * running them anyway with MIDGE_V5_RUN_SKIPPED=1).
 */
export function mosquittoDiffers(why: string, timeout = T.timeout, midgeTodo?: string): { timeout: number; skip?: string; todo?: string } {
  if (isMosquitto) return process.env.MIDGE_V5_RUN_SKIPPED !== '1' ? { timeout, skip: `mosquitto 2.0.11 ${why}` } : { timeout };
  return midgeTodo === undefined ? { timeout } : { timeout, todo: midgeTodo };
}

/** Test options for a test that fails because of a Midge bug not fixed yet (reported; see the reason). */
export function midgeBug(reason: string, timeout = T.timeout): { timeout: number; todo?: string } {
  return isMosquitto ? { timeout } : { timeout, todo: `midge bug: ${reason}` };
}

/** For `afterEach`: every client, process and broker a test started, stopped. */
export async function cleanup(): Promise<void> {
  closeAllRaw();
  await closeAllClients();
  await killAll();
  await stopAllBrokers();
}

// ---- MQTT.js --------------------------------------------------------------------------------

/** An MQTT.js client speaking MQTT 5 to 127.0.0.1:port. */
export function v5(port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  return connect(port, { protocolVersion: 5, ...opts });
}

/** The CONNACK the client received. */
export function connackOf(client: MqttClient): IConnackPacket {
  const p = packets(client).find((t) => t.dir === 'in' && t.cmd === 'connack');
  assert.ok(p, 'no CONNACK in the trace');
  return p.packet as IConnackPacket;
}

// ---- paho -----------------------------------------------------------------------------------

/**
 * The paho driver: one paho.mqtt.client.Client (MQTTv5), commands as JSON lines on stdin, every callback
 * as a JSON line on stdout. Its own network loop does not reconnect (loop_start would).
 */
const PAHO_DRIVER = String.raw`import sys, json, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions
from paho.mqtt.reasoncodes import ReasonCodes

port = int(sys.argv[1])
lock = threading.Lock()
client = None

def emit(ev, **kw):
    kw['ev'] = ev
    with lock:
        sys.stdout.write(json.dumps(kw) + '\n')
        sys.stdout.flush()

def code(rc):
    return getattr(rc, 'value', rc)

def from_props(p):
    out = {}
    if p is None:
        return out
    for k, v in p.json().items():
        if isinstance(v, (bytes, bytearray)):
            v = v.hex()
        out[k] = v
    return out

def to_props(ptype, d):
    if not d:
        return None
    p = Properties(ptype)
    for k, v in d.items():
        if k == 'UserProperty':
            for kv in v:
                p.UserProperty = (kv[0], kv[1])
        elif k in ('CorrelationData', 'AuthenticationData'):
            setattr(p, k, bytes.fromhex(v))
        else:
            setattr(p, k, v)
    return p

def payload_of(c):
    if 'hex' in c:
        return bytes.fromhex(c['hex'])
    return c.get('payload', '').encode('utf-8')

def on_connect(cl, ud, flags, rc, props=None):
    emit('connack', rc=code(rc), sessionPresent=bool(flags.get('session present')), props=from_props(props))

def on_subscribe(cl, ud, mid, rcs, props=None):
    emit('suback', mid=mid, rcs=[code(r) for r in rcs])

def on_message(cl, ud, m):
    emit('message', topic=m.topic, payload=m.payload.decode('utf-8', 'replace'), hex=m.payload.hex(),
         qos=m.qos, retain=bool(m.retain), props=from_props(getattr(m, 'properties', None)))

def on_publish(cl, ud, mid):
    emit('published', mid=mid)

def on_disconnect(cl, ud, rc, props=None):
    emit('disconnect', rc=code(rc), props=from_props(props))

def loop():
    while True:
        rc = client.loop(timeout=0.05)
        if rc != 0:
            emit('loop-ended', rc=rc)
            return

emit('ready')
for line in sys.stdin:
    c = json.loads(line)
    op = c['op']
    if op == 'connect':
        client = mqtt.Client(client_id=c.get('clientId', ''), protocol=mqtt.MQTTv5)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.on_publish = on_publish
        client.on_disconnect = on_disconnect
        w = c.get('will')
        if w:
            client.will_set(w['topic'], payload_of(w), qos=w.get('qos', 0), retain=w.get('retain', False),
                            properties=to_props(PacketTypes.WILLMESSAGE, w.get('props')))
        client.connect('127.0.0.1', port, keepalive=c.get('keepalive', 60), clean_start=c.get('cleanStart', True),
                       properties=to_props(PacketTypes.CONNECT, c.get('props')))
        threading.Thread(target=loop, daemon=True).start()
    elif op == 'subscribe':
        opts = SubscribeOptions(qos=c.get('qos', 0), noLocal=c.get('noLocal', False),
                                retainAsPublished=c.get('retainAsPublished', False),
                                retainHandling=c.get('retainHandling', 0))
        rc, mid = client.subscribe(c['topic'], options=opts, properties=to_props(PacketTypes.SUBSCRIBE, c.get('props')))
        emit('subscribing', mid=mid, rc=rc)
    elif op == 'publish':
        info = client.publish(c['topic'], payload_of(c), qos=c.get('qos', 0), retain=c.get('retain', False),
                              properties=to_props(PacketTypes.PUBLISH, c.get('props')))
        emit('publishing', mid=info.mid, rc=info.rc)
    elif op == 'disconnect':
        client.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, identifier=c.get('rc', 0)),
                          properties=to_props(PacketTypes.DISCONNECT, c.get('props')))
`;

let driverDir: string | undefined;
function driverPath(): string {
  if (driverDir === undefined) {
    driverDir = mkdtempSync(join(tmpdir(), 'midge-paho5-'));
    writeFileSync(join(driverDir, 'driver.py'), PAHO_DRIVER);
    process.on('exit', () => rmSync(driverDir!, { recursive: true, force: true }));
  }
  return join(driverDir, 'driver.py');
}

export interface PahoEvent {
  ev: string;
  rc?: number;
  rcs?: number[];
  mid?: number;
  sessionPresent?: boolean;
  topic?: string;
  payload?: string;
  hex?: string;
  qos?: number;
  retain?: boolean;
  props?: Record<string, unknown>;
}

export interface PahoConnect {
  clientId: string;
  cleanStart?: boolean;
  keepalive?: number;
  /** paho property names without spaces, e.g. { SessionExpiryInterval: 60 }; CorrelationData in hex */
  props?: Record<string, unknown>;
  will?: { topic: string; payload?: string; qos?: number; retain?: boolean; props?: Record<string, unknown> };
}

export interface PahoClient {
  readonly pid: number;
  readonly events: PahoEvent[];
  command(c: Record<string, unknown>): void;
  /** The first event (from index `from`) named `ev` that satisfies `pred`. */
  waitFor(ev: string, pred?: (e: PahoEvent) => boolean, timeoutMs?: number, from?: number): Promise<PahoEvent>;
  /** Every 'message' event so far. */
  messages(): PahoEvent[];
  /** Subscribes and resolves with the SUBACK's reason codes. */
  subscribe(topic: string, o?: { qos?: number; noLocal?: boolean; retainAsPublished?: boolean; retainHandling?: number; props?: Record<string, unknown> }): Promise<number[]>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts the paho driver and connects; resolves with the client and its CONNACK event (any reason code). */
export async function paho(port: number, c: PahoConnect): Promise<[PahoClient, PahoEvent]> {
  const child = spawnTracked(PYTHON, ['-u', driverPath(), String(port)]);
  const events: PahoEvent[] = [];
  const waiters = new Waiters();
  let partial = '';
  let stderr = '';
  let ended = false;
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) events.push(JSON.parse(l) as PahoEvent);
    waiters.check();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.once('close', () => {
    ended = true;
    waiters.check();
  });
  const describe = (): string => `paho '${c.clientId}' events: ${JSON.stringify(events)}\nstderr: ${stderr}`;
  const client: PahoClient = {
    pid: child.pid ?? -1,
    events,
    command: (cmd) => child.stdin?.write(`${JSON.stringify(cmd)}\n`),
    waitFor: (ev, pred = () => true, timeoutMs = 3000, from = 0) =>
      waiters.wait(`paho '${c.clientId}' waiting for ${ev}`, timeoutMs, () => events.slice(from).find((e) => e.ev === ev && pred(e)),
        describe, () => (ended ? 'the paho process exited' : undefined)),
    messages: () => events.filter((e) => e.ev === 'message'),
    async subscribe(topic, o = {}) {
      const from = events.length;
      client.command({ op: 'subscribe', topic, ...o });
      const { mid } = await client.waitFor('subscribing', (e) => e.rc === 0, 3000, from);
      return (await client.waitFor('suback', (e) => e.mid === mid, 3000, from)).rcs!;
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exitOf(child);
    },
  };
  await client.waitFor('ready', undefined, 5000);
  client.command({ op: 'connect', ...c });
  return [client, await client.waitFor('connack', undefined, 5000)];
}

// ---- mosquitto_pub / mosquitto_sub ---------------------------------------------------------------

/** `mosquitto_pub -h 127.0.0.1 -p PORT -V mqttv5 ARGS` to completion; rejects unless it exits 0. */
export async function mosqPub(port: number, args: readonly string[], timeoutMs = 5000): Promise<RunResult> {
  const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv5', ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`mosquitto_pub ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
  return r;
}

/** `mosquitto_sub -h 127.0.0.1 -p PORT ARGS` kept running (add -V mqttv5 yourself), stdout line by line. */
export function mosqSub(port: number, args: readonly string[]): LineProcess {
  return spawnLines('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), ...args]);
}

/**
 * Proves a subscriber on `topic` is subscribed: publishes `ready-1`, `ready-2`, ... (QoS 0) until the
 * subscriber prints the one just published. Returns the number of lines printed so far.
 */
export async function untilReady(port: number, sub: LineProcess, topic: string, timeoutMs = 5000): Promise<number> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  for (let i = 1; Math.round(performance.now()) < deadline; i++) {
    await mosqPub(port, ['-t', topic, '-m', `ready-${i}`]);
    try {
      await sub.waitForLine(new RegExp(`ready-${i}\\b`), 250);
      return sub.lines.length;
    } catch {
      // not subscribed yet: publish the next marker
    }
  }
  throw new Error(`no ready-* marker on '${topic}'\nstdout: ${JSON.stringify(sub.lines)}\nstderr: ${sub.stderr()}`);
}

/** The lines of a subscriber that are not `ready-*` markers. */
export const withoutMarkers = (lines: readonly string[]): string[] => lines.filter((l) => !/ready-\d+/.test(l));
