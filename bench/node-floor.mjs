// The floor of any Node.js broker on this machine, for the latency rows of BENCHMARKS.md:
// node bench/node-floor.mjs PORT [HOST]. NOT a broker: it answers CONNECT, SUBSCRIBE and PINGREQ
// with fixed acks, forwards every PUBLISH byte for byte to every other connection and PUBACKs QoS 1
// (no topics, no sessions, no checks). Whatever latency it shows is what node's sockets, event loop
// and garbage collector cost here before any MQTT work is done. Only for the one-publisher,
// one-subscriber latency scenarios (lat_q0, lat_q1), measured with the C loadgen (run-peers.sh).
import net from 'node:net';

const port = Number(process.argv[2] ?? 1883);
const host = process.argv[3] ?? '127.0.0.1';
const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);
const clients = new Set();

function onPacket(sock, buf, start, bodyStart, end) {
  const type = buf[start] >> 4;
  if (type === 1) sock.write(CONNACK);
  else if (type === 8) sock.write(Buffer.from([0x90, 3, buf[bodyStart], buf[bodyStart + 1], 0]));
  else if (type === 12) sock.write(PINGRESP);
  else if (type === 3) {
    const packet = buf.subarray(start, end);
    for (const c of clients) if (c !== sock) c.write(packet);
    if (((buf[start] >> 1) & 3) === 1) {
      const at = bodyStart + 2 + buf.readUInt16BE(bodyStart);
      sock.write(Buffer.from([0x40, 2, buf[at], buf[at + 1]]));
    }
  }
}

net.createServer({ noDelay: true }, (sock) => {
  let rest = null;
  clients.add(sock);
  sock.on('data', (chunk) => {
    const buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
    let pos = 0;
    for (;;) {
      let len = 0;
      let mult = 1;
      let i = pos + 1;
      let b = 0x80;
      while ((b & 0x80) !== 0 && i < buf.length) { b = buf[i++]; len += (b & 0x7f) * mult; mult *= 128; }
      if ((b & 0x80) !== 0 || buf.length - i < len || pos >= buf.length) break;
      onPacket(sock, buf, pos, i, i + len);
      pos = i + len;
    }
    rest = pos < buf.length ? buf.subarray(pos) : null;
  });
  sock.on('error', () => {});
  sock.on('close', () => clients.delete(sock));
}).listen({ port, host, backlog: 4096 });
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
