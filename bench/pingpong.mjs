// The cost of one wake-up round trip between two processes over loopback TCP on this machine, with no
// MQTT work at all: node bench/pingpong.mjs [ROUNDS]. A server process answers each 80-byte write (20
// PUBACKs' worth) with 1,540 bytes (20 QoS 1 PUBLISHes of 64 B), one round at a time, as a broker does
// for a subscriber whose window (max_inflight_messages 20) is full; the same in one process for
// comparison (no wake-up of another process). A QoS 1 flow that waits for its window round by round
// cannot go faster than 20 messages per round trip measured here.
import net from 'node:net';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const serving = process.argv[2] === '--serve';
const ROUNDS = serving ? 0 : Number(process.argv[2] ?? 20000);
if (!serving && (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 1_000_000)) {
  console.error(`rounds: expected an integer from 1 to 1000000, not ${process.argv[2]}`);
  process.exit(2);
}
const REPLY = Buffer.alloc(1540, 0x32);
const ASK = Buffer.alloc(80, 0x40);

/** Answers every read with REPLY; reports the mean time of its socket.write calls. */
function serve(onListening) {
  const server = net.createServer({ noDelay: true }, (s) => {
    let spent = 0;
    let n = 0;
    s.on('data', () => {
      const t0 = performance.now();
      s.write(REPLY);
      spent += performance.now() - t0;
      n++;
    });
    s.on('close', () => {
      server.close();
      process.send?.({ writeUs: (spent / Math.max(1, n)) * 1000 });
    });
  });
  server.listen(0, '127.0.0.1', () => onListening(server.address().port, server));
}

/** ROUNDS strict ping-pongs; resolves with the mean round in µs. */
function client(port) {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    c.setNoDelay(true);
    let got = 0;
    let rounds = 0;
    let t0 = 0;
    c.on('error', reject);
    c.on('connect', () => {
      t0 = performance.now();
      c.write(ASK);
    });
    c.on('data', (d) => {
      got += d.length;
      if (got < REPLY.length) return;
      got -= REPLY.length;
      if (++rounds === ROUNDS) {
        const us = ((performance.now() - t0) / ROUNDS) * 1000;
        c.end();
        resolve(us);
      } else c.write(ASK);
    });
  });
}

if (serving) {
  serve((port) => process.send({ port }));
} else {
  // in one process: both ends on one event loop
  const local = await new Promise((resolve) => serve(async (port) => resolve(await client(port))));
  // across processes: the server in a child
  const child = fork(fileURLToPath(import.meta.url), ['--serve']);
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const cross = await client(port);
  const { writeUs } = await new Promise((resolve) => child.once('message', resolve));
  child.kill();
  const f = (x) => x.toFixed(1);
  console.log(`rounds ${ROUNDS}: one process ${f(local)} µs per round; two processes ${f(cross)} µs per round ` +
    `(the server's socket.write ${f(writeUs)} µs); a 20-message window round by round: at most ${Math.round(20e6 / cross).toLocaleString('en-US')} msgs/s`);
}
