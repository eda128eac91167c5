/** Worker-thread entry: one Engine, driven by the coordinator's messages. */
import { parentPort } from 'node:worker_threads';
import { Engine } from './engine.js';
import type { FromWorker, ToWorker } from './protocol.js';

const port = parentPort;
if (port === null) throw new Error('src/bench/worker.js runs as a worker thread');

let engine: Engine | undefined;
const post = (m: FromWorker): void => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'init') {
      engine = new Engine(m.cfg, m.assignment, m.shared, post);
      return;
    }
    if (engine === undefined) throw new Error(`'${m.type}' before 'init'`);
    switch (m.type) {
      case 'connectSubs': engine.connectSubs(); break;
      case 'connectPubs': engine.connectPubs(); break;
      case 'connectIdle': engine.connectIdle(m.startNs); engine.startKeepalive(); break;
      case 'start': engine.start(m.timeline); break;
      case 'disconnectSubs': engine.disconnectSubs(); break;
      case 'reconnectSubs': engine.reconnectSubs(); break;
      case 'finish': engine.finish(); break;
    }
  } catch (err) {
    post({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
});
