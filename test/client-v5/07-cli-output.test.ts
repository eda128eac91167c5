/**
 * midge pub/sub/rr -V 5 side by side with mosquitto_pub/sub/rr against the same broker (mosquitto, then
 * Midge's): `-F` with the 5.0 codes (%P %A %C %E %R %D %S %F, widths, %j/%J, --pretty) byte for byte,
 * what `midge pub -D` sends as seen by both subscribers, the `-d` log of a topic alias, and midge rr.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { midge, Proc, run } from '../client/_helpers.js';
import { Clients, KINDS, startBrokerOf, waitFor } from './_helpers.js';

const DEBUG = /^Client \S+ (sending|received) |^Subscribed \(mid/;
/** stdout without the -d lines, and with the time of %j masked */
const printed = (p: Proc): string => p.stdout.split('\n').filter((l) => !DEBUG.test(l)).join('\n').replace(/"tst":\t?"[^"]*"/g, '"tst":"T"');

/** The same property set for mosquitto_pub and midge pub. */
const PROPS = [
  '-D', 'publish', 'content-type', 'text/x; a=b', '-D', 'publish', 'user-property', 'z', '1', '-D', 'publish', 'user-property', 'a', '2',
  '-D', 'publish', 'user-property', 'z', '3', '-D', 'publish', 'response-topic', 'reply/here', '-D', 'publish', 'correlation-data', 'id-42',
  '-D', 'publish', 'message-expiry-interval', '1000', '-D', 'publish', 'payload-format-indicator', '1',
];

for (const kind of KINDS) {
  describe(`midge sub/pub -V 5 and mosquitto_sub/pub against ${kind}`, () => {
    let broker: BrokerProcess;
    let P: string;
    const procs: Proc[] = [];
    const clients = new Clients();

    before(async () => {
      broker = await startBrokerOf(kind, [], false);
      P = String(broker.port);
    });
    after(async () => {
      await Promise.all(procs.map((p) => p.stop()));
      await clients.endAll();
      await broker.stop();
    });

    /** midge sub and mosquitto_sub with the same arguments, both subscribed */
    async function subscribers(args: string[]): Promise<[Proc, Proc]> {
      const ours = Proc.midge(['sub', '-p', P, '-d', ...args]);
      // line-buffered, so that its -d lines show up while it runs
      const theirs = new Proc('stdbuf', ['-oL', 'mosquitto_sub', '-p', P, '-d', ...args]);
      procs.push(ours, theirs);
      await Promise.all([ours.waitForOutput('received SUBACK'), theirs.waitForOutput('received SUBACK')]);
      return [ours, theirs];
    }

    async function same(ours: Proc, theirs: Proc): Promise<string> {
      const [a, b] = await Promise.all([ours.wait(8000), theirs.wait(8000)]);
      assert.equal(printed(ours), printed(theirs));
      assert.deepEqual([a.code, ours.stderr], [b.code, theirs.stderr]);
      assert.equal(a.code, 0);
      return printed(ours);
    }

    test('-F with every 5.0 code and widths, for what mosquitto_pub -D and midge pub -D send', async () => {
      const format = '[%P][%C][%E][%R][%D][%S][%F][%A][%10C][%-12R|][%08E][%3S][%t][%p][%q][%l]';
      const [ours, theirs] = await subscribers(['-V', '5', '-t', 'fmt/#', '-q', '1', '-C', '4', '-F', format, '-D', 'subscribe', 'subscription-identifier', '9']);
      assert.equal((await run('mosquitto_pub', ['-p', P, '-V', '5', '-q', '1', '-t', 'fmt/theirs', '-m', 'one', ...PROPS])).code, 0);
      assert.equal((await midge(['pub', '-p', P, '-V', '5', '-q', '1', '-t', 'fmt/ours', '-m', 'one', ...PROPS])).code, 0);
      assert.equal((await midge(['pub', '-p', P, '-V', '5', '-q', '0', '-t', 'fmt/ours', '-m', 'bare'])).code, 0);
      assert.equal((await midge(['pub', '-p', P, '-V', '5', '-q', '1', '-t', 'fmt/ours', '-m', 'x', '-D', 'publish', 'user-property', '', ''])).code, 0);
      const out = await same(ours, theirs);
      const lines = out.split('\n');
      // what midge pub sent arrived as what mosquitto_pub sent (the topic apart)
      assert.equal(lines[1], lines[0]!.replace('fmt/theirs', 'fmt/ours'));
      assert.match(lines[0]!, /^\[z:1 a:2 z:3\]\[text\/x; a=b\]\[1000\]\[reply\/here\]\[id-42\]\[9\]\[1\]\[\]/);
    });

    test('%j and %J (compact and --pretty) are byte for byte the same', async () => {
      for (const [format, extra] of [['%j', []], ['%J', []], ['%j', ['--pretty']], ['%J', ['--pretty']]] as const) {
        const [ours, theirs] = await subscribers(['-V', '5', '-t', 'json/#', '-q', '1', '-C', '3', '-F', format, ...extra, '-D', 'subscribe', 'subscription-identifier', '3']);
        await run('mosquitto_pub', ['-p', P, '-V', '5', '-q', '1', '-t', 'json/a', '-m', '{"k":[1,2.5,"é"],"k":{"n":null}}', ...PROPS]);
        await midge(['pub', '-p', P, '-V', '5', '-q', '1', '-t', 'json/b', '-m', 'not "json"\t', '-D', 'publish', 'correlation-data', 'c\\"d']);
        await midge(['pub', '-p', P, '-V', '5', '-q', '2', '-t', 'json/c', '-m', '[1e-7, -0, 12345678901]']);
        await same(ours, theirs);
      }
    });

    test('midge pub -D publish topic-alias sends the topic once, like mosquitto_pub (same -d log), and subscribers get it every time', async () => {
      const watcher = await clients.connect(`mqtt://127.0.0.1:${P}`);
      const got: string[] = [];
      watcher.on('message', (m) => got.push(m.topic));
      await watcher.subscribe('alias/#', { qos: 1 });
      const args = (id: string): string[] => ['-p', P, '-V', '5', '-i', id, '-q', '1', '-t', 'alias/t', '-m', 'x', '--repeat', '3', '-d', '-D', 'publish', 'topic-alias', '1'];
      const theirs = await run('mosquitto_pub', args('alias-pub'));
      const ours = await midge(['pub', ...args('alias-pub')]);
      assert.deepEqual([ours.code, ours.stdout, ours.stderr], [theirs.code, theirs.stdout, theirs.stderr]);
      assert.match(ours.stdout, /'alias\/t'.*\n(.*\n)*.*'\(null\)'/);
      await waitFor(() => got.length === 6, 5000, 'six messages');
      assert.deepEqual(got, Array(6).fill('alias/t'));
    });

    if (kind === 'midge') {
      // mosquitto 2.0.11's client library cannot take an aliased PUBLISH without a topic, so one message only
      test('%A shows the topic alias the broker used', async () => {
        const [ours, theirs] = await subscribers(['-V', '5', '-t', 'a/#', '-C', '1', '-F', '%A|%t|%p|%j', '-D', 'connect', 'topic-alias-maximum', '5']);
        await run('mosquitto_pub', ['-p', P, '-t', 'a/1', '-m', 'hi', '-V', '5']);
        assert.match(await same(ours, theirs), /^1\|a\/1\|hi\|/);
      });

      test('midge sub resolves the aliases of every later message (mosquitto_sub 2.0.11 gives up on the second)', async () => {
        const ours = Proc.midge(['sub', '-p', P, '-d', '-V', '5', '-t', 'b/#', '-C', '3', '-F', '%A %t %p', '-D', 'connect', 'topic-alias-maximum', '5']);
        procs.push(ours);
        await ours.waitForOutput('received SUBACK');
        for (const m of ['1', '2', '3']) await run('mosquitto_pub', ['-p', P, '-t', 'b/1', '-m', m, '-V', '5']);
        assert.equal((await ours.wait(5000)).code, 0);
        assert.equal(printed(ours), '1 b/1 1\n1 b/1 2\n1 b/1 3\n');
      });
    }

    test('midge rr -V 5 -D prints the response as mosquitto_rr does', async () => {
      const responder = await clients.connect(`mqtt://127.0.0.1:${P}`);
      const requests: string[] = [];
      responder.on('message', (m) => {
        const { responseTopic, correlationData, userProperties, contentType } = m.properties ?? {};
        requests.push(JSON.stringify([contentType, userProperties]));
        if (!responseTopic) return;
        void responder.publish(responseTopic, `re: ${m.payload.toString()}`, {
          qos: 1, properties: { ...(correlationData ? { correlationData } : {}), userProperties: [['answered', 'yes'], ...(userProperties ?? [])], contentType: 'text/reply' },
        });
      });
      await responder.subscribe('rr/req', { qos: 1 });
      const args = ['-p', P, '-t', 'rr/req', '-e', 'rr/resp', '-m', 'ask', '-q', '1', '-W', '5', '-F', '%t|%p|%P|%C|%R',
        '-D', 'publish', 'user-property', 'who', 'me', '-D', 'publish', 'content-type', 'text/q'];
      const theirs = await run('mosquitto_rr', args);
      const ours = await midge(['rr', ...args]);
      assert.deepEqual([ours.code, ours.stdout, ours.stderr], [theirs.code, theirs.stdout, theirs.stderr]);
      assert.equal(ours.stdout, 'rr/resp|re: ask|answered:yes who:me|text/reply|\n');
      assert.deepEqual(requests, Array(2).fill(JSON.stringify(['text/q', [['who', 'me']]])));
    });
  });
}
