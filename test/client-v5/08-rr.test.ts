/**
 * `midge rr` against Debian's mosquitto, side by side with mosquitto_rr (moved here from
 * test/cli/pub-sub.test.ts; the 5.0 property output is compared in 07-cli-output.test.ts).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message } from '../../src/client/index.js';
import { midge, removeDir, run, startMosquitto, type Broker } from '../client/_helpers.js';

let broker: Broker;
let P: string;

before(async () => {
  broker = await startMosquitto();
  P = String(broker.port);
});
after(async () => {
  await broker.stop();
  removeDir(broker.dir);
});

describe('midge rr', () => {
  test('sends the request with response topic and correlation data and prints the matching response', async () => {
    const responder = await connect(`mqtt://127.0.0.1:${P}`, { protocolVersion: 5 });
    const requests: Message[] = [];
    responder.on('message', (m) => {
      requests.push(m);
      const { responseTopic, correlationData } = m.properties ?? {};
      if (!responseTopic) return;
      // first an answer to somebody else's request, then ours
      void responder.publish(responseTopic, 'not yours', { properties: { correlationData: Buffer.from('other') } })
        .then(() => responder.publish(responseTopic, `answer to ${m.payload.toString()}`, { properties: correlationData ? { correlationData } : {} }));
    });
    await responder.subscribe('rr/req');
    try {
      const ours = await midge(['rr', '-p', P, '-t', 'rr/req', '-e', 'rr/resp', '-m', 'question', '-W', '5']);
      assert.deepEqual([ours.code, ours.stdout, ours.stderr], [0, 'answer to question\n', '']);
      assert.equal(requests[0]?.properties?.responseTopic, 'rr/resp');
      assert.ok(requests[0]?.properties?.correlationData?.length);
      const theirs = await run('mosquitto_rr', ['-p', P, '-t', 'rr/req', '-e', 'rr/resp', '-m', 'question', '-W', '5']);
      assert.equal(theirs.code, 0);
    } finally {
      await responder.end();
    }
  });

  test('-W without a response, and missing arguments, end as mosquitto_rr does', async () => {
    for (const args of [['-p', P, '-t', 'rr/none', '-e', 'rr/nobody', '-m', 'x', '-W', '1'], ['-p', P, '-t', 'rr/req', '-m', 'x']]) {
      const [ours, theirs] = await Promise.all([midge(['rr', ...args]), run('mosquitto_rr', args)]);
      assert.deepEqual([ours.code, ours.stderr], [theirs.code, theirs.stderr.replace(/mosquitto_rr/g, 'midge rr')]);
      assert.notEqual(ours.code, 0);
    }
  });
});
