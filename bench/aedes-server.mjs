// Aedes 1.x behind node:net, for bench/run.mjs: node bench/aedes-server.mjs PORT [HOST]
// (HOST defaults to 127.0.0.1). Stops on SIGTERM/SIGINT.
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2] ?? 1883);
const host = process.argv[3] ?? '127.0.0.1';
const aedes = await Aedes.createBroker();
const server = net.createServer(aedes.handle);
server.listen({ port, host, backlog: 4096 });
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
