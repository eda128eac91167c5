/**
 * `midge pub / sub / rr` at the edges, against Debian's mosquitto and beside mosquitto_pub/sub/rr: long
 * stdin lines (linear time, the payload limit), SIGINT/SIGTERM while reading stdin or waiting, arguments
 * that are not valid UTF-8, too-long topics, bad ports and ids.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { connect, type MqttClient } from '../../src/client/index.js';
import { collect, midge, MIDGE, Proc, removeDir, run, sleep, startMosquitto, type Broker } from '../client/_helpers.js';

let broker: Broker;
let P: string;
const procs: Proc[] = [];
const clients: MqttClient[] = [];

before(async () => {
  broker = await startMosquitto();
  P = String(broker.port);
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(clients.map((c) => c.end({ force: true })));
  await broker.stop();
  removeDir(broker.dir);
});

async function subscriber(topic: string): Promise<ReturnType<typeof collect>> {
  const c = await connect(`mqtt://127.0.0.1:${P}`, { connectTimeout: 5000 });
  clients.push(c);
  const got = collect(c);
  await c.subscribe(topic, { qos: 1 });
  return got;
}

/** Runs a bash script (for raw bytes in arguments and for big inputs made by `head`). */
const bash = (script: string, timeout = 60_000): ReturnType<typeof run> => run('bash', ['-c', script], { timeout });
const M = `"${process.execPath}" "${MIDGE}"`;
const normalise = (s: string): string => s.replace(/mosquitto_(pub|sub|rr)/g, 'midge $1');

describe('-l and -s: long input', () => {
  test('-l publishes a 16 MB line whole, in linear time', async () => {
    const got = await subscriber('long/16');
    const line = Buffer.alloc(16 * 1024 * 1024, 0x61);
    const t0 = Math.round(performance.now());
    const r = await midge(['pub', '-p', P, '-t', 'long/16', '-l', '-q', '1'], { input: Buffer.concat([line, Buffer.from('\nend\n')]), timeout: 60_000 });
    const took = Math.round(performance.now()) - t0;
    assert.deepEqual([r.code, r.stderr], [0, '']);
    // quadratic, this took about 4 s for the line alone (19 s for 40 MB); linear, well under a second
    assert.ok(took < 15_000, `midge pub -l took ${took} ms`);
    const [first, second] = await got.next(2, 15_000);
    assert.equal(first!.payload.length, line.length);
    assert.ok(first!.payload.equals(line), 'the line arrives whole');
    assert.equal(second!.payload.toString(), 'end');
  });

  test('-l refuses a line over 268435455 bytes (after publishing the lines before it); -s and -f say what mosquitto_pub says', async () => {
    const got = await subscriber('long/limit');
    const over = 268_435_456;
    const l = await bash(`{ echo before; head -c ${over} /dev/zero; echo; echo after; } | ${M} pub -p ${P} -t long/limit -l -q 1`);
    assert.deepEqual([l.code, l.stderr], [1, 'Error: Input line longer than 268435455 bytes, the largest MQTT payload.\n']);
    assert.deepEqual((await got.next(1)).map((m) => m.payload.toString()), ['before']);
    // mosquitto_pub prints the same, then crashes (exit 139); midge exits 1
    const s = await bash(`head -c ${over} /dev/zero | ${M} pub -p ${P} -t long/limit -s`);
    assert.deepEqual([s.code, s.stderr], [1, 'Error: Message length must be less than 268435455 bytes.\n\nError loading input from stdin.\n']);
    const dir = broker.dir;
    const f = await bash(`truncate -s ${over} ${dir}/big.bin && ${M} pub -p ${P} -t long/limit -f ${dir}/big.bin; rc=$?; rm -f ${dir}/big.bin; exit $rc`);
    const theirs = await bash(`truncate -s ${over} ${dir}/big2.bin && mosquitto_pub -p ${P} -t long/limit -f ${dir}/big2.bin; rc=$?; rm -f ${dir}/big2.bin; exit $rc`);
    assert.deepEqual([f.code, f.stderr], [theirs.code, theirs.stderr.replaceAll('big2.bin', 'big.bin')]);
    assert.equal(f.code, 1);
    await sleep(200);
    assert.equal(got.messages.length, 1, 'nothing else was published');
  });
});

describe('SIGINT and SIGTERM stop every command promptly', () => {
  /** Starts a command with stdin open, waits until it is under way, signals it; returns the exit and the time taken. */
  async function signalled(cmd: string, args: string[], signal: NodeJS.Signals, feed?: Buffer, ready?: () => boolean | Promise<boolean>) {
    const p = new Proc(cmd, args, { stdin: 'pipe' });
    procs.push(p);
    p.child.stdin!.on('error', () => undefined);
    if (feed) p.child.stdin!.write(feed);
    const end = Math.round(performance.now()) + 5000;
    while (ready && !(await ready()) && Math.round(performance.now()) < end) await sleep(20);
    await sleep(300);
    assert.equal(p.child.exitCode, null, `still running before the signal: ${p.stderr}`);
    const t0 = Math.round(performance.now());
    p.child.kill(signal);
    const exit = await p.wait(5000);
    return { ...exit, took: Math.round(performance.now()) - t0, stderr: p.stderr };
  }
  /** mosquitto -v logs "New client connected from ... as ID (p2, c1, k60)." */
  const connected = (id: string) => (): boolean => broker.log().includes(` as ${id} (`);

  test('pub -l during a long line (8 MB so far, no newline): SIGTERM and SIGINT end it at once, as mosquitto_pub', async () => {
    const part = Buffer.alloc(8 * 1024 * 1024, 0x62);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const id = `sig-l-${signal}`;
      const ours = await signalled(process.execPath, [MIDGE, 'pub', '-p', P, '-t', 'sig/l', '-l', '-i', id], signal, part, connected(id));
      const theirs = await signalled('mosquitto_pub', ['-p', P, '-t', 'sig/l', '-l', '-i', `${id}-m`], signal, part, connected(`${id}-m`));
      assert.ok(ours.took < 2000, `${signal}: took ${ours.took} ms`);
      assert.deepEqual([ours.code, ours.signal], [theirs.code, theirs.signal], signal);
      assert.deepEqual([ours.code, ours.signal], [null, signal]);
    }
  });

  test('pub -s and rr -s while reading stdin, and rr while waiting for the response', async () => {
    for (const args of [['pub', '-p', P, '-t', 'sig/s', '-s'], ['rr', '-p', P, '-t', 'sig/rr', '-e', 'sig/rr/resp', '-s']]) {
      const r = await signalled(process.execPath, [MIDGE, ...args], 'SIGTERM', Buffer.from('partial input'));
      assert.ok(r.took < 2000, `${args[0]} -s took ${r.took} ms`);
      assert.deepEqual([r.code, r.signal], [null, 'SIGTERM'], args.join(' '));
    }
    const ours = await signalled(process.execPath, [MIDGE, 'rr', '-p', P, '-t', 'sig/rr', '-e', 'sig/rr/resp', '-m', 'q', '-i', 'sig-rr'], 'SIGTERM', undefined, connected('sig-rr'));
    const theirs = await signalled('mosquitto_rr', ['-p', P, '-t', 'sig/rr', '-e', 'sig/rr/resp', '-m', 'q', '-i', 'sig-rr-m'], 'SIGTERM', undefined, connected('sig-rr-m'));
    assert.ok(ours.took < 2000, `rr took ${ours.took} ms`);
    assert.deepEqual([ours.code, ours.signal], [theirs.code, theirs.signal]);
  });

  test('sub: DISCONNECT and exit 0, as mosquitto_sub; also while the broker does not answer CONNECT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const id = `sig-sub-${signal}`;
      const ours = await signalled(process.execPath, [MIDGE, 'sub', '-p', P, '-t', 'sig/sub', '-i', id], signal, undefined, connected(id));
      const theirs = await signalled('mosquitto_sub', ['-p', P, '-t', 'sig/sub', '-i', `${id}-m`], signal, undefined, connected(`${id}-m`));
      assert.ok(ours.took < 2000, `${signal}: took ${ours.took} ms`);
      assert.deepEqual([ours.code, ours.signal, ours.stderr], [theirs.code, theirs.signal, theirs.stderr]);
      assert.deepEqual([ours.code, ours.signal], [0, null]);
    }
    // a listener that accepts the connection and never answers
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = String((silent.address() as net.AddressInfo).port);
      const r = await signalled(process.execPath, [MIDGE, 'sub', '-p', port, '-t', 'sig/silent'], 'SIGTERM', undefined, () => sockets.length > 0);
      assert.ok(r.took < 2000, `took ${r.took} ms`);
      assert.deepEqual([r.code, r.signal, r.stderr], [0, null, '']);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});

describe('arguments that are not valid UTF-8: refused as mosquitto does', () => {
  const cases: Array<[tool: 'pub' | 'sub' | 'rr', args: string]> = [
    ['pub', "-t $'a\\xff' -m x"], ['sub', "-t $'a\\xff'"], ['sub', "-t a -T $'a\\xff'"], ['sub', "-t a -U $'a\\xff'"],
    ['pub', "-t a -m x --will-topic $'w\\xff'"], ['pub', "-L $'mqtt://localhost/a\\xff' -m x"], ['rr', "-t a -m x -e $'r\\xc3'"],
    ['pub', "-t a -m x -u $'u\\xff'"], ['sub', "-t a -u $'u\\xff'"],
  ];
  for (const [tool, args] of cases) {
    test(`${tool} ${args}`, async () => {
      const ours = await bash(`${M} ${tool} -p ${P} ${args}`);
      const theirs = await bash(`mosquitto_${tool} -p ${P} ${args}`);
      assert.deepEqual([ours.code, ours.stderr], [theirs.code, normalise(theirs.stderr)]);
      assert.equal(ours.code, 1);
    });
  }

  test('-i: exit 1 as mosquitto_pub (which prints nothing); midge says why', async () => {
    const ours = await bash(`${M} pub -p ${P} -t a -m x -i $'a\\xff'`);
    const theirs = await bash(`mosquitto_pub -p ${P} -t a -m x -i $'a\\xff'`);
    assert.equal(ours.code, theirs.code);
    assert.deepEqual([ours.code, ours.stderr], [1, 'Error: Invalid id.\n']);
  });

  test('a topic that really contains U+FFFD (the valid bytes EF BF BD) is published', async () => {
    const got = await subscriber('utf8/#');
    const r = await bash(`${M} pub -p ${P} -t $'utf8/\\xef\\xbf\\xbd' -m ok -q 1`);
    assert.deepEqual([r.code, r.stderr], [0, '']);
    const [m] = await got.next(1);
    assert.equal(m!.topic, 'utf8/\uFFFD');
  });
});

describe('bad topics, ports and ids', () => {
  test('a 70000-byte topic: the real reason, the topic cut short, exit 1', async () => {
    const long = 'a'.repeat(70_000);
    for (const args of [['pub', '-t', long, '-m', 'x'], ['sub', '-t', long], ['sub', '-t', 'a', '-T', long]]) {
      const r = await midge(args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^Error: Invalid (publish|subscription|filter) topic 'a{100}\.\.\. \(70000 bytes\)': it is 70000 bytes long, and a topic can be at most 65535 bytes\.\n\nUse 'midge (pub|sub) --help' to see usage\.\n$/);
    }
  });

  test('-p abc and -p 0 say the port is invalid (mosquitto_pub says "No such file or directory")', async () => {
    for (const port of ['abc', '0']) {
      for (const tool of ['pub', 'sub'] as const) {
        const r = await midge([tool, '-t', 'a', ...(tool === 'pub' ? ['-m', 'x'] : []), '-p', port]);
        assert.deepEqual([r.code, r.stderr], [1, `Error: Invalid port given: ${port}\n\nUse 'midge ${tool} --help' to see usage.\n`]);
      }
    }
  });

  test('-i \'\' is an invalid id: the same words and exit code as mosquitto_pub, _sub and _rr', async () => {
    for (const [tool, args] of [['pub', ['-t', 'a', '-m', 'x']], ['sub', ['-t', 'a']], ['rr', ['-t', 'a', '-e', 'b', '-m', 'x']]] as const) {
      const all = ['-p', P, ...args, '-i', ''];
      const ours = await midge([tool, ...all]);
      const theirs = await run(`mosquitto_${tool}`, all);
      assert.deepEqual([ours.code, ours.stderr], [theirs.code, theirs.stderr], tool);
      assert.equal(ours.code, 1);
    }
    // mosquitto_pub reads -f first, mosquitto_rr checks the id first
    const pf = ['-p', P, '-t', 'a', '-f', '/nonexistent/file', '-i', ''];
    assert.deepEqual(await midge(['pub', ...pf]).then((r) => r.stderr), await run('mosquitto_pub', pf).then((r) => r.stderr));
    const rf = ['-p', P, '-t', 'a', '-e', 'b', '-f', '/nonexistent/file', '-i', ''];
    assert.deepEqual(await midge(['rr', ...rf]).then((r) => r.stderr), await run('mosquitto_rr', rf).then((r) => r.stderr));
  });
});
