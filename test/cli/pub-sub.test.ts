/**
 * `midge pub` and `midge sub` against Debian's mosquitto, side by side with mosquitto_pub/mosquitto_sub
 * and paho-mqtt: output, exit codes and error texts must match the real tools.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  freePort, makeCerts, midge, MIDGE, paho, Proc, removeDir, run, startMosquitto, tempDir, waitFor, type Broker, type Certs,
} from '../client/_helpers.js';

let broker: Broker;
let P: string;
const procs: Proc[] = [];

/** a long-running `midge sub` (stopped in after()) that has subscribed once its SUBACK is seen */
async function sub(args: string[]): Promise<Proc> {
  const p = Proc.midge(['sub', '-p', P, '-d', ...args]);
  procs.push(p);
  await p.waitForOutput('received SUBACK');
  return p;
}
/** stdout without the -d lines */
const printed = (p: Proc): string[] => p.lines().filter((l) => !/^Client .* (sending|received) |^Subscribed \(mid/.test(l));

before(async () => {
  broker = await startMosquitto();
  P = String(broker.port);
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await broker.stop();
  removeDir(broker.dir);
});

describe('publish and subscribe against mosquitto', () => {
  test('midge sub prints what mosquitto_pub sends, and mosquitto_sub prints what midge pub sends', async () => {
    const s = await sub(['-t', 'cli/s2']);
    assert.equal((await run('mosquitto_pub', ['-p', P, '-t', 'cli/s2', '-m', 'abc'])).code, 0);
    await waitFor(() => printed(s).includes('abc'));
    const theirs = new Proc('mosquitto_sub', ['-p', P, '-t', 'cli/s2b', '-C', '1']);
    procs.push(theirs);
    await waitFor(() => broker.log().includes('cli/s2b'), 5000, 'mosquitto_sub to subscribe');
    const r = await midge(['pub', '-p', P, '-t', 'cli/s2b', '-m', 'hello']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, '', '']);
    assert.equal((await theirs.wait()).code, 0);
    assert.equal(theirs.stdout, 'hello\n');
  });

  test('the effective QoS is the lower of publish and subscribe QoS', async () => {
    const subs = await Promise.all(([0, 1, 2] as const).map((q) => sub(['-t', `cli/qos/${q}`, '-q', String(q), '-F', '%q %p'])));
    for (const pq of [0, 1, 2]) {
      for (const sq of [0, 1, 2]) {
        const r = await midge(['pub', '-p', P, '-t', `cli/qos/${sq}`, '-q', String(pq), '-m', `p${pq}`]);
        assert.equal(r.code, 0, r.stderr);
      }
    }
    for (const [sq, s] of subs.entries()) {
      await waitFor(() => printed(s).length === 3);
      assert.deepEqual(printed(s), [0, 1, 2].map((pq) => `${Math.min(pq, sq)} p${pq}`));
    }
  });

  test('-d prints the same packet log as mosquitto_pub -d', async () => {
    for (const q of ['0', '1', '2']) {
      const ours = await midge(['pub', '-p', P, '-t', 'cli/debug', '-m', 'abc', '-q', q, '-d', '-i', 'dbg']);
      const theirs = await run('mosquitto_pub', ['-p', P, '-t', 'cli/debug', '-m', 'abc', '-q', q, '-d', '-i', 'dbg']);
      assert.equal(ours.stdout, theirs.stdout);
      assert.equal(ours.code, theirs.code);
    }
  });

  test('midge sub -d prints the same packet log as mosquitto_sub -d', async () => {
    const ours = Proc.midge(['sub', '-p', P, '-t', 'cli/dsub', '-q', '1', '-d', '-i', 'dsub-a', '-C', '3']);
    const theirs = new Proc('mosquitto_sub', ['-p', P, '-t', 'cli/dsub', '-q', '1', '-d', '-i', 'dsub-b', '-C', '3']);
    procs.push(ours, theirs);
    await ours.waitForOutput('Subscribed');
    // mosquitto_sub's -d lines are block-buffered on a pipe: watch the broker's log instead
    await waitFor(() => broker.log().split('cli/dsub (QoS 1)').length > 2, 5000, 'mosquitto_sub to subscribe');
    for (const q of ['1', '0', '1']) await midge(['pub', '-p', P, '-t', 'cli/dsub', '-q', q, '-m', `q${q}`]);
    await Promise.all([ours.wait(), theirs.wait()]);
    assert.equal(ours.stdout.replaceAll('dsub-a', 'ID'), theirs.stdout.replaceAll('dsub-b', 'ID'));
  });

  test('retain: -r is kept for new subscribers, -R hides it, --retained-only and --remove-retained', async () => {
    assert.equal((await midge(['pub', '-p', P, '-t', 'cli/ret', '-m', 'kept', '-r', '-q', '1'])).code, 0);
    const r1 = await midge(['sub', '-p', P, '-t', 'cli/ret', '-C', '1', '-F', '%r %p']);
    assert.deepEqual([r1.code, r1.stdout], [0, '1 kept\n']);
    const only = await midge(['sub', '-p', P, '-t', 'cli/ret', '--retained-only', '-W', '2']);
    assert.equal(only.stdout, 'kept\n');
    const hidden = await midge(['sub', '-p', P, '-t', 'cli/ret', '-R', '-W', '1']);
    assert.deepEqual([hidden.code, hidden.stdout, hidden.stderr], [27, '', 'Timed out\n']);
    const removed = await midge(['sub', '-p', P, '-t', 'cli/ret', '--remove-retained', '-C', '1']);
    assert.equal(removed.stdout, 'kept\n');
    const gone = await midge(['sub', '-p', P, '-t', 'cli/ret', '-W', '1']);
    assert.deepEqual([gone.code, gone.stdout], [27, '']);
  });

  test('-C and -W exit as mosquitto_sub does', async () => {
    const [ours, theirs] = await Promise.all([
      midge(['sub', '-p', P, '-t', 'cli/w', '-W', '1']),
      run('mosquitto_sub', ['-p', P, '-t', 'cli/w', '-W', '1']),
    ]);
    assert.deepEqual([ours.code, ours.stdout, ours.stderr], [theirs.code, theirs.stdout, theirs.stderr]);
    assert.equal(ours.code, 27);
    const s = Proc.midge(['sub', '-p', P, '-t', 'cli/c', '-C', '2', '-d']);
    procs.push(s);
    await s.waitForOutput('received SUBACK');
    for (const m of ['one', 'two', 'three']) await midge(['pub', '-p', P, '-t', 'cli/c', '-m', m]);
    assert.equal((await s.wait()).code, 0);
    assert.deepEqual(printed(s), ['one', 'two']);
  });

  test('-F output is byte for byte the same as mosquitto_sub -F', async () => {
    const format = '%t|%p|%q|%r|%l|%x|%X|%%|\\t|%8t|%-8p|%05l|%m|@@|\\\\';
    const ours = await sub(['-t', 'cli/fmt', '-q', '1', '-F', format]);
    const theirs = new Proc('mosquitto_sub', ['-p', P, '-t', 'cli/fmt', '-q', '1', '-F', format, '-C', '2']);
    procs.push(theirs);
    await waitFor(() => broker.log().split('cli/fmt (QoS 1)').length > 2, 5000, 'mosquitto_sub to subscribe');
    await midge(['pub', '-p', P, '-t', 'cli/fmt', '-m', 'payload one', '-q', '1']);
    await midge(['pub', '-p', P, '-t', 'cli/fmt', '-m', 'x', '-r']);
    await theirs.wait();
    await waitFor(() => printed(ours).length === 2);
    assert.deepEqual(printed(ours).map((l) => l.replace(/\|\d+\|@/, '|M|@')), theirs.lines().map((l) => l.replace(/\|\d+\|@/, '|M|@')));
    await midge(['pub', '-p', P, '-t', 'cli/fmt', '-n', '-r']);
  });

  test('-v, -N, -T and -U print and filter as mosquitto_sub does', async () => {
    const s = await sub(['-t', 'cli/v/#', '-v', '-T', 'cli/v/skip', '-U', 'nothing/here']);
    await midge(['pub', '-p', P, '-t', 'cli/v/a', '-m', 'hello']);
    await midge(['pub', '-p', P, '-t', 'cli/v/skip', '-m', 'hidden']);
    await midge(['pub', '-p', P, '-t', 'cli/v/b', '-n']);
    await waitFor(() => printed(s).length === 2);
    assert.deepEqual(printed(s), ['cli/v/a hello', 'cli/v/b (null)']);
    const n = await sub(['-t', 'cli/n', '-N', '-C', '2']);
    await midge(['pub', '-p', P, '-t', 'cli/n', '-m', 'a']);
    await midge(['pub', '-p', P, '-t', 'cli/n', '-m', 'b']);
    await n.wait();
    assert.ok(n.stdout.endsWith('Subscribed (mid: 1): 0\nClient (null) received PUBLISH (d0, q0, r0, m0, \'cli/n\', ... (1 bytes))\naClient (null) received PUBLISH (d0, q0, r0, m0, \'cli/n\', ... (1 bytes))\nbClient (null) sending DISCONNECT\n'), n.stdout);
  });

  test('-E exits once the subscription is acknowledged', async () => {
    const r = await midge(['sub', '-p', P, '-t', 'cli/e', '-E', '-d', '-i', 'e1']);
    const m = await run('mosquitto_sub', ['-p', P, '-t', 'cli/e', '-E', '-d', '-i', 'e1']);
    assert.deepEqual([r.code, r.stdout], [m.code, m.stdout]);
  });

  test('-l publishes each stdin line as it arrives', async () => {
    const s = await sub(['-t', 'cli/lines', '-q', '1']);
    const p = Proc.midge(['pub', '-p', P, '-t', 'cli/lines', '-l', '-q', '1'], { stdin: 'pipe' });
    procs.push(p);
    p.child.stdin!.write('first line\n');
    await waitFor(() => printed(s).includes('first line'), 5000, 'the first line before stdin ends');
    p.child.stdin!.write('second\n\nlast without newline');
    p.child.stdin!.end();
    assert.equal((await p.wait()).code, 0);
    await waitFor(() => printed(s).length === 3);
    assert.deepEqual(printed(s), ['first line', 'second', 'last without newline']);
  });

  test('midge sub prints each message as it arrives, without buffering, into a pipe', async () => {
    const s = await sub(['-t', 'cli/pipe']);
    for (const m of ['m1', 'm2', 'm3']) {
      await midge(['pub', '-p', P, '-t', 'cli/pipe', '-m', m]);
      await waitFor(() => printed(s).includes(m), 3000, `${m} on the pipe`);
    }
  });

  test('midge sub stops quietly when the reader of its pipe goes away', async () => {
    const script = `"${process.execPath}" "${MIDGE}" sub -p ${P} -t cli/head | head -1; echo "status \${PIPESTATUS[0]}"`;
    const pipeline = new Proc('bash', ['-c', script]);
    procs.push(pipeline);
    await waitFor(() => broker.log().includes('cli/head (QoS 0)'), 5000, 'the subscription');
    for (let i = 1; i <= 3 && pipeline.child.exitCode === null; i++) await midge(['pub', '-p', P, '-t', 'cli/head', '-m', `h${i}`]);
    assert.equal((await pipeline.wait(5000)).code, 0);
    assert.equal(pipeline.stdout, 'h1\nstatus 0\n');
    assert.equal(pipeline.stderr, '');
  });

  test('-f, -s and -n send a file, all of stdin and an empty message', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'msg'), 'from\nfile');
    const s = await sub(['-t', 'cli/in', '-F', '%l:%p', '-N']);
    await midge(['pub', '-p', P, '-t', 'cli/in', '-f', join(dir, 'msg')]);
    await midge(['pub', '-p', P, '-t', 'cli/in', '-s'], { input: 'all\nof stdin\n' });
    await midge(['pub', '-p', P, '-t', 'cli/in', '-n']);
    const out = (): string => s.stdout.replace(/(Client \(null\)|Subscribed) [^\n]*\n/g, '');
    await waitFor(() => out().endsWith('0:'));
    assert.equal(out(), '9:from\nfile13:all\nof stdin\n0:');
    removeDir(dir);
  });

  test('-V 5 -D properties print as mosquitto_sub -F prints them; -V 31 works; bad -D as mosquitto_pub says', async () => {
    const format = ['-F', '%p|%P|%C|%R|%D|%E|%S'];
    const s = await sub(['-t', 'cli/v5', '-V', '5', ...format, '-q', '1', '-D', 'subscribe', 'subscription-identifier', '4']);
    const theirs = new Proc('mosquitto_sub', ['-p', P, '-t', 'cli/v5', '-V', '5', ...format, '-q', '1', '-C', '2', '-D', 'subscribe', 'subscription-identifier', '4']);
    procs.push(theirs);
    await waitFor(() => broker.log().split('cli/v5 (QoS 1)').length > 2, 5000, 'mosquitto_sub to subscribe');
    const r = await midge(['pub', '-p', P, '-t', 'cli/v5', '-m', 'x', '-V', '5', '-q', '1', '-D', 'publish', 'user-property', 'k', 'v',
      '-D', 'publish', 'content-type', 'text/plain', '-D', 'publish', 'response-topic', 'cli/reply', '-D', 'publish', 'correlation-data', 'c1',
      '-D', 'publish', 'message-expiry-interval', '100', '-D', 'publish', 'user-property', 'k', 'w']);
    assert.equal(r.code, 0, r.stderr);
    await midge(['pub', '-p', P, '-t', 'cli/v5', '-m', 'old', '-V', '31']);
    await waitFor(() => printed(s).length === 2);
    assert.equal((await theirs.wait()).code, 0);
    assert.deepEqual(printed(s), ['x|k:v k:w|text/plain|cli/reply|c1|100|4', 'old||||||4']);
    assert.equal(theirs.stdout, `${printed(s).join('\n')}\n`);
    for (const bad of [['foo', 'x', 'y'], ['connect', 'content-type', 'x'], ['publish', 'subscription-identifier', '1'], ['publish', 'message-expiry-interval', '-1']]) {
      const args = ['-p', P, '-t', 't', '-m', 'm', '-D', ...bad];
      const [ours, mosq] = await Promise.all([midge(['pub', ...args]), run('mosquitto_pub', args)]);
      assert.deepEqual([ours.code, ours.stderr], [mosq.code, mosq.stderr.replace(/mosquitto_pub/g, 'midge pub')]);
    }
  });

  test('a persistent session (-c -i) gets what was published while it was away, in order', async () => {
    const first = await midge(['sub', '-p', P, '-t', 'cli/durable', '-q', '1', '-i', 'client01', '-c', '-E']);
    assert.equal(first.code, 0, first.stderr);
    for (const m of ['a1', 'a2', 'a3']) await midge(['pub', '-p', P, '-t', 'cli/durable', '-m', m, '-i', 'client02', '-q', '1']);
    const back = await midge(['sub', '-p', P, '-t', 'cli/durable', '-q', '1', '-i', 'client01', '-c', '-C', '3']);
    assert.deepEqual([back.code, back.stdout], [0, 'a1\na2\na3\n']);
  });

  test('the will of a killed midge sub reaches mosquitto_sub', async () => {
    const watcher = new Proc('mosquitto_sub', ['-p', P, '-t', 'cli/will', '-C', '1', '-v']);
    procs.push(watcher);
    const victim = await sub(['-t', 'cli/none', '--will-topic', 'cli/will', '--will-payload', 'gone', '-k', '5']);
    await waitFor(() => broker.log().includes('cli/will (QoS 0)'), 5000, 'mosquitto_sub to subscribe');
    victim.child.kill('SIGKILL');
    assert.equal((await watcher.wait()).code, 0);
    assert.equal(watcher.stdout, 'cli/will gone\n');
  });
});

describe('paho interop', () => {
  test('a paho subscriber receives what midge pub sends', async () => {
    const script = `
import sys, paho.mqtt.client as mqtt
n = 0
def on_connect(c, u, f, rc): c.subscribe('paho/out', qos=1)
def on_subscribe(c, u, mid, q): print('subscribed', flush=True)
def on_message(c, u, m):
    global n
    print(m.topic, m.payload.decode(), m.qos, int(m.retain), flush=True)
    n += 1
    if n == 2: c.disconnect()
c = mqtt.Client(client_id='paho-sub')
c.on_connect = on_connect; c.on_subscribe = on_subscribe; c.on_message = on_message
c.connect('127.0.0.1', int(sys.argv[1]))
c.loop_forever()
`;
    const p = paho(script, [P]);
    procs.push(p);
    await p.waitForOutput('subscribed');
    await midge(['pub', '-p', P, '-t', 'paho/out', '-m', 'to paho', '-q', '1']);
    await midge(['pub', '-p', P, '-t', 'paho/out', '-m', 'q2', '-q', '2']);
    assert.equal((await p.wait(5000)).code, 0, p.stderr);
    assert.deepEqual(p.lines().slice(1), ['paho/out to paho 1 0', 'paho/out q2 1 0']);
  });

  test('midge sub prints what a paho publisher sends', async () => {
    const s = await sub(['-t', 'paho/in', '-q', '2', '-F', '%q %p']);
    const script = `
import sys, paho.mqtt.client as mqtt
c = mqtt.Client(client_id='client04')
c.connect('127.0.0.1', int(sys.argv[1]))
c.loop_start()
info = c.publish(topic='paho/in', payload='abc', qos=2)
info.wait_for_publish()
print('rc:', info.rc)
print('mid:', info.mid)
c.disconnect()
c.loop_stop()
`;
    const p = paho(script, [P]);
    procs.push(p);
    assert.equal((await p.wait(5000)).code, 0, p.stderr);
    assert.deepEqual(p.lines(), ['rc: 0', 'mid: 1']);
    await waitFor(() => printed(s).includes('2 abc'));
  });
});

describe('bad input: the same one-line error and exit code as mosquitto', () => {
  const normalise = (s: string): string => s.replace(/mosquitto_(pub|sub)/g, 'midge $1');
  const cases: Array<[tool: 'pub' | 'sub', args: string[]]> = [
    ['pub', ['--bogus']], ['sub', ['--bogus']], ['pub', ['-t', 'a', '-m', 'x', '-q', '3']], ['sub', ['-t', 'a', '-q', '3']],
    ['sub', []], ['pub', ['-t']], ['pub', ['-t', 'a/#', '-m', 'x']], ['sub', ['-t', 'a/#/b']], ['pub', ['-t', 'a', '-m', 'x', '-k', '2']],
    ['pub', ['-t', 'a', '-m', 'x', '-V', '6']], ['pub', ['-t', 'a', '-m', 'x', '-p', '70000']], ['sub', ['-t', 'a', '-C', '0']],
    ['sub', ['-t', 'a', '-F', '%z']], ['sub', ['-t', 'a', '-F', '%']], ['sub', ['-t', 'a', '-F', 'x\\q']],
    ['pub', ['-t', 'a', '-m', 'x', '--will-payload', 'p']], ['pub', ['-t', 'a', '-m', 'x', '-i', 'a', '-I', 'b']],
    ['sub', ['-t', 'a', '-c']], ['sub', ['-t', 'a', '-c', '-V', '5']], ['pub', ['-t', 'a', '-m']], ['pub', ['-t', 'a', '-n', '-l']],
    ['pub', ['-L', 'foo://h/t', '-m', 'x']], ['pub', ['-L', 'mqtt://h', '-m', 'x']], ['sub', ['-t', 'a', '-m', 'x']],
    ['sub', ['-t', 'a', '-x', 'abc']], ['sub', ['-t', 'a', '-R', '--retained-only']], ['pub', ['-t', 'a', '-m', 'x', '--cert', 'c']],
    ['pub', ['-t', 'a', '-m', 'x', '-D', 'publish', 'session-expiry-interval', '5']], ['sub', ['-t', 'a', '-W', 'x']],
  ];
  for (const [tool, args] of cases) {
    test(`${tool} ${args.join(' ') || '(no arguments)'}`, async () => {
      const ours = await midge([tool, ...args]);
      const theirs = await run(`mosquitto_${tool}`, args);
      assert.equal(ours.stderr, normalise(theirs.stderr));
      assert.equal(ours.code, theirs.code);
      assert.notEqual(ours.code, 0);
    });
  }

  test('missing topic or message: usage on stdout and the error on stderr', async () => {
    const ours = await midge(['pub', '-t', 'a']);
    const theirs = await run('mosquitto_pub', ['-t', 'a']);
    assert.equal(ours.stderr, theirs.stderr);
    assert.equal(ours.code, theirs.code);
    assert.match(ours.stdout, /^Usage: midge pub/m);
  });

  test('an unreachable host gives "Error: Connection refused" and exit code 1', async () => {
    const port = String(await freePort());
    for (const tool of ['pub', 'sub'] as const) {
      const args = tool === 'pub' ? ['-p', port, '-t', 'a', '-m', 'x'] : ['-p', port, '-t', 'a'];
      const ours = await midge([tool, ...args]);
      const theirs = await run(`mosquitto_${tool}`, args);
      assert.deepEqual([ours.code, ours.stderr], [theirs.code, theirs.stderr]);
      assert.deepEqual([ours.code, ours.stderr], [1, 'Error: Connection refused\n']);
    }
  });

  test('a refused login gives mosquitto\'s connection error and the CONNACK code as exit code', async () => {
    const dir = tempDir();
    const r = spawnSync('mosquitto_passwd', ['-c', '-b', join(dir, 'passwd'), 'mqtt', 'test']);
    assert.equal(r.status, 0);
    const auth = await startMosquitto(['allow_anonymous false', 'password_file $DIR/passwd'], { dir });
    try {
      const port = String(auth.port);
      for (const extra of [[], ['-u', 'mqtt', '-P', 'bad'], ['-V', '5'], ['-V', '31']]) {
        for (const tool of ['pub', 'sub'] as const) {
          const args = [...(tool === 'pub' ? ['-p', port, '-t', 'a', '-m', 'x'] : ['-p', port, '-t', 'a']), ...extra];
          const ours = await midge([tool, ...args]);
          const theirs = await run(`mosquitto_${tool}`, args);
          assert.deepEqual([ours.code, ours.stderr], [theirs.code, theirs.stderr], `${tool} ${args.join(' ')}`);
        }
      }
      const ok = await midge(['pub', '-p', port, '-t', 'a', '-m', 'x', '-u', 'mqtt', '-P', 'test']);
      assert.equal(ok.code, 0);
    } finally {
      await auth.stop();
      removeDir(dir);
    }
  });
});

describe('TLS', () => {
  let certs: Certs;
  let tlsBroker: Broker;
  let wrongPort: string;
  before(async () => {
    certs = makeCerts();
    const wp = await freePort();
    wrongPort = String(wp);
    tlsBroker = await startMosquitto([
      `cafile ${certs.ca}`, `certfile ${certs.cert}`, `keyfile ${certs.key}`,
      `listener ${wp} 127.0.0.1`, `cafile ${certs.ca}`, `certfile ${certs.wrongCert}`, `keyfile ${certs.wrongKey}`,
      'allow_anonymous true',
    ]);
  });
  after(async () => {
    await tlsBroker.stop();
    removeDir(tlsBroker.dir);
    removeDir(certs.dir);
  });

  test('--cafile connects over TLS', async () => {
    const port = String(tlsBroker.port);
    const s = Proc.midge(['sub', '-h', 'localhost', '-p', port, '--cafile', certs.ca, '-t', 'tls/t', '-C', '1', '-d']);
    procs.push(s);
    await s.waitForOutput('received SUBACK');
    const r = await midge(['pub', '-h', 'localhost', '-p', port, '--cafile', certs.ca, '-t', 'tls/t', '-m', 'over tls', '-q', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await s.wait()).code, 0);
    assert.ok(s.stdout.endsWith('over tls\nClient (null) sending DISCONNECT\n'), s.stdout);
  });

  test('a TLS name mismatch fails with mosquitto\'s TLS error and a non-zero exit; --insecure connects', async () => {
    const args = ['-h', 'localhost', '-p', wrongPort, '--cafile', certs.ca, '-t', 'tls/t', '-m', 'x'];
    const ours = await midge(['pub', ...args]);
    const theirs = await run('mosquitto_pub', args);
    assert.equal(ours.stderr, 'Error: A TLS error occurred.\n');
    assert.match(theirs.stderr, /A TLS error occurred\./);
    assert.notEqual(ours.code, 0);
    assert.notEqual(theirs.code, 0);
    const debug = await midge(['pub', ...args, '-d']);
    assert.match(debug.stdout, /host name verification failed/);
    const insecure = await midge(['pub', ...args, '--insecure']);
    assert.equal(insecure.code, 0, insecure.stderr);
  });

  test('a missing --cafile file is reported like mosquitto', async () => {
    const args = ['-p', String(tlsBroker.port), '--cafile', '/nonexistent/ca.crt', '-t', 'a', '-m', 'x'];
    const ours = await midge(['pub', ...args]);
    const theirs = await run('mosquitto_pub', args);
    assert.deepEqual([ours.code, ours.stderr], [theirs.code, theirs.stderr]);
  });
});
