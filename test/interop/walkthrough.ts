/**
 * What the interop tests share: the walkthrough's Python scripts (verbatim; only the port, and where
 * a test says so the keepalive, are changed), and running mosquitto_pub / python against a test broker.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, spawnLines, type LineProcess, type RunResult } from '../helpers/proc.js';

export const PYTHON = '/usr/bin/python3';

/** The walkthrough's scripts, as printed in mqtt-basics-mosquitto-paho.ja.txt. */
export const scripts = {
  /** Python subscriber (S5). */
  subscriber: `import paho.mqtt.client as mqtt

def on_message(client, userdata, message):
    print('topic:', message.topic)
    print('payload:', message.payload)
    print('qos:', message.qos)

client03 = mqtt.Client(client_id='client03', clean_session=False)
client03.on_message = on_message

client03.connect('localhost', 1883)
client03.subscribe(topic='test', qos=1)
client03.loop_forever()
`,
  /** Python publisher (S5). */
  publisher: `import paho.mqtt.client as mqtt

client04 = mqtt.Client(client_id='client04')

client04.connect('localhost', 1883)
info = client04.publish(topic='test', payload='abc', qos=1)
print('rc:', info.rc)
print('mid:', info.mid)
client04.disconnect()
`,
  /** Retain publisher (S6). */
  retain: `import paho.mqtt.client as mqtt

client04 = mqtt.Client(client_id='client04')

client04.connect('localhost', 1883)
info = client04.publish(topic='test', payload='retain message', retain=True)
print('rc:', info.rc)
print('mid:', info.mid)
client04.disconnect()
`,
  /** Will set, then a clean disconnect() (S7). */
  willThenDisconnect: `import paho.mqtt.client as mqtt

client04 = mqtt.Client(client_id='client04')
client04.will_set(topic='test', payload='will message')

client04.connect('localhost', 1883)
info = client04.publish(topic='test', payload='abc')
print('rc:', info.rc)
print('mid:', info.mid)
client04.disconnect()
`,
  /** Will set, the process ends without disconnect() (S8). */
  willNoDisconnect: `import paho.mqtt.client as mqtt

client04 = mqtt.Client(client_id='client04')
client04.will_set(topic='test', payload='will')

client04.connect('localhost', 1883)
info = client04.publish(topic='test', payload='abc')
print('rc:', info.rc)
print('mid:', info.mid)
# diconnectしない
#client04.disconnect()
`,
  /** Publishes every 60 s with keepalive=300; killed in S8. */
  willPeriodic: `import paho.mqtt.client as mqtt
from time import sleep

client04 = mqtt.Client(client_id='client04')
client04.will_set(topic='test', payload='will message')

client04.connect('localhost', 1883, keepalive=300)

i = 1
while True:
    info = client04.publish(topic='test', payload='message %i' % i)
    print('rc:', info.rc)
    print('mid:', info.mid)
    i+=1
    sleep(60)
`,
  /** Publishes once, then loop_forever() answers keepalive (S8 stopped, S9). */
  willLoopForever: `import paho.mqtt.client as mqtt

client04 = mqtt.Client(client_id='client04')
client04.will_set(topic='test', payload='will')

client04.connect('localhost', 1883)
info = client04.publish(topic='test', payload='abc')
print('rc:', info.rc)
print('mid:', info.mid)
client04.loop_forever()
`,
} as const;

/** A temporary directory for script files; `remove()` it in `after()`. */
export class ScriptDir {
  readonly path = mkdtempSync(join(tmpdir(), 'midge-interop-'));
  private count = 0;

  /**
   * Writes `text` with the port 1883 replaced by `port` (and, when `keepalive` is given, the connect call
   * given that keepalive) and returns the file name.
   */
  write(text: string, port: number, keepalive?: number): string {
    if (!/\b1883\b/.test(text)) throw new Error('script has no port 1883 to replace');
    let out = text.replace(/\b1883\b/g, String(port));
    if (keepalive !== undefined) {
      const before = out;
      out = out.replace(/(\.connect\('localhost', \d+)(, keepalive=\d+)?\)/, `$1, keepalive=${keepalive})`);
      if (out === before) throw new Error('script has no connect() to give a keepalive');
    }
    const file = join(this.path, `script${++this.count}.py`);
    writeFileSync(file, out);
    return file;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** `python3 -u FILE` to completion (bounded). */
export function python(file: string, timeoutMs = 10_000): Promise<RunResult> {
  return run(PYTHON, ['-u', file], { timeoutMs });
}

/** `python3 -u FILE`, long-running, stdout line by line. */
export function pythonLines(file: string): LineProcess {
  return spawnLines(PYTHON, ['-u', file]);
}

/** `mosquitto_pub -p PORT ARGS...` to completion; rejects unless it exits 0. */
export async function mosquittoPub(port: number, args: readonly string[], timeoutMs = 5000): Promise<RunResult> {
  const r = await run('mosquitto_pub', ['-p', String(port), ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(`mosquitto_pub ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
  return r;
}

/**
 * Proves that a subscriber on `topic` is subscribed, without changing its command: publishes `ready-1`,
 * `ready-2`, ... (QoS 0, not retained), each after the previous publisher has exited, until the subscriber prints the one
 * just published. Delivery keeps the order in which the broker got them, so no earlier marker comes later.
 */
export async function untilSubscribed(port: number, sub: LineProcess, topic = 'test', timeoutMs = 5000): Promise<void> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  for (let i = 1; Math.round(performance.now()) < deadline; i++) {
    await mosquittoPub(port, ['-t', topic, '-m', `ready-${i}`]);
    try {
      await sub.waitForLine(new RegExp(`ready-${i}\\b`), 200);
      return;
    } catch {
      // not subscribed yet (or the marker is still on its way): publish the next one
    }
  }
  throw new Error(`subscriber never received a ready-* marker on '${topic}'\nstdout: ${JSON.stringify(sub.lines)}\nstderr: ${sub.stderr()}`);
}

/** The lines of a subscriber that are not the `ready-*` markers of `untilSubscribed`. */
export function withoutMarkers(lines: readonly string[]): string[] {
  return lines.filter((l) => !/ready-\d+/.test(l));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
