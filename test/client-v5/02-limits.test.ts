/**
 * The broker's 5.0 CONNACK limits and failed acks through the client library, against Debian's mosquitto
 * and Midge's broker configured with the same mosquitto.conf limits: the client reads them
 * (`client.connack`), stays within them (receive maximum, maximum packet size, retain available,
 * maximum QoS, server keep alive) and turns refusals into typed errors with their reason codes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrokerProcess } from '../helpers/broker-process.js';
import { createBroker } from '../../src/index.js';
import { MaximumPacketSizeError, PublishError, SubscribeError } from '../../src/client/index.js';
import { Clients, collect, KINDS, rejection, sleep, startBrokerOf, waitFor } from './_helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-v5-limits-'));
const aclFile = join(dir, 'acl');
writeFileSync(aclFile, 'topic readwrite ok/#\n', { mode: 0o644 });
after(() => rmSync(dir, { recursive: true, force: true }));

const LIMITS = ['max_inflight_messages 2', 'max_packet_size 500', 'retain_available false', 'max_keepalive 10', 'max_topic_alias 3', `acl_file ${aclFile}`];

for (const kind of KINDS) {
  describe(`CONNACK limits and failed acks against ${kind}`, () => {
    let broker: BrokerProcess;
    let url: string;
    const clients = new Clients();

    before(async () => {
      // Midge has no max_qos (it always grants QoS 2)
      broker = await startBrokerOf(kind, kind === 'mosquitto' ? [...LIMITS, 'max_qos 1'] : LIMITS);
      url = `mqtt://127.0.0.1:${broker.port}`;
    });
    after(async () => {
      await clients.endAll();
      await broker.stop();
    });

    test('client.connack holds what the broker announced, with the 5.0 defaults filled in', async () => {
      const c = await clients.connect(url, { clientId: '', keepalive: 60, properties: { requestResponseInformation: 1 } });
      const info = c.connack!;
      assert.match(c.clientId, /^auto-/);
      assert.equal(info.assignedClientIdentifier, c.clientId);
      assert.deepEqual(
        [info.receiveMaximum, info.maximumPacketSize, info.retainAvailable, info.serverKeepAlive, info.topicAliasMaximum, info.maximumQoS],
        [2, 500, false, 10, 3, kind === 'mosquitto' ? 1 : 2],
      );
      assert.deepEqual([info.wildcardSubscriptionAvailable, info.sharedSubscriptionAvailable, info.subscriptionIdentifiersAvailable], [true, true, true]);
      // request/response: Midge answers with response information, mosquitto 2.0.11 has none
      assert.equal(info.responseInformation, kind === 'midge' ? `response/${c.clientId}` : undefined);
    });

    test('no more QoS 1 publishes are in flight than the broker receive maximum', async () => {
      const c = await clients.connect(url);
      let inFlight = 0;
      let most = 0;
      c.on('packetsend', (p) => { if (p.type === 'publish') most = Math.max(most, ++inFlight); });
      c.on('packetreceive', (p) => { if (p.type === 'puback') inFlight--; });
      const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => c.publish('ok/window', `m${i}`, { qos: 1 })));
      assert.equal(ids.length, 10);
      assert.equal(most, 2);
    });

    test('a publish larger than the broker maximum packet size rejects with MaximumPacketSizeError; the connection stays up', async () => {
      const sub = await clients.connect(url);
      const got = collect(sub);
      await sub.subscribe('ok/size', { qos: 1 });
      const c = await clients.connect(url);
      const err = await rejection(c.publish('ok/size', Buffer.alloc(600), { qos: 1 }));
      assert.ok(err instanceof MaximumPacketSizeError, String(err));
      assert.deepEqual([err.limit, err.reasonCode], [500, 0x95]);
      await c.publish('ok/size', 'small', { qos: 1 });
      const [m] = await got.next(1);
      assert.equal(m!.payload.toString(), 'small');
      assert.equal(c.connected, true);
    });

    test('a retained publish to a broker without retain rejects with PublishError 0x9A; the connection stays up', async () => {
      const c = await clients.connect(url);
      const err = await rejection(c.publish('ok/retain', 'x', { qos: 1, retain: true }));
      assert.ok(err instanceof PublishError && err.reasonCode === 0x9a, String(err));
      await c.publish('ok/retain', 'x', { qos: 1 });
      assert.equal(c.connected, true);
    });

    if (kind === 'mosquitto') {
      test('a QoS 2 publish to a broker with maximum QoS 1 rejects with PublishError 0x9B', async () => {
        const c = await clients.connect(url);
        const err = await rejection(c.publish('ok/qos', 'x', { qos: 2 }));
        assert.ok(err instanceof PublishError && err.reasonCode === 0x9b, String(err));
        assert.equal(await c.subscribe('ok/qos', { qos: 2 }), 1, 'a subscription is granted the maximum');
      });
    }

    test('a publish the ACL refuses rejects with PublishError 0x87', async () => {
      const c = await clients.connect(url);
      for (const qos of kind === 'mosquitto' ? [1] as const : [1, 2] as const) {
        const err = await rejection(c.publish('denied/t', 'x', { qos }));
        assert.ok(err instanceof PublishError, String(err));
        assert.equal(err.reasonCode, 0x87);
      }
      assert.equal(c.connected, true);
    });

    if (kind === 'midge') {
      // mosquitto 2.0.11 grants a subscription the ACL refuses and filters at delivery instead
      test('a subscription the ACL refuses rejects with SubscribeError and the code of each filter', async () => {
        const c = await clients.connect(url);
        const err = await rejection(c.subscribe(['ok/s', 'denied/s'], { qos: 1 }));
        assert.ok(err instanceof SubscribeError, String(err));
        assert.deepEqual([err.reasonCodes, err.topics], [[1, 0x87], ['ok/s', 'denied/s']]);
      });

      test('a publish whose payload is not the UTF-8 its format indicator says rejects with PublishError 0x99', async () => {
        const c = await clients.connect(url);
        const err = await rejection(c.publish('ok/pfi', Buffer.from([0xff, 0xfe]), { qos: 1, properties: { payloadFormatIndicator: 1 } }));
        assert.ok(err instanceof PublishError && err.reasonCode === 0x99, String(err));
      });
    }
  });
}

describe('server keep alive', () => {
  test('the client sends PINGREQ on the broker Server Keep Alive (1 s), not on its own keepalive (60 s)', async () => {
    const broker = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0, maxKeepalive: 1 });
    const [addr] = await broker.listen();
    const clients = new Clients();
    try {
      const c = await clients.connect(`mqtt://127.0.0.1:${addr!.port}`, { keepalive: 60 });
      assert.equal(c.connack?.serverKeepAlive, 1);
      const pings: number[] = [];
      const start = Math.round(performance.now());
      c.on('packetsend', (p) => { if (p.type === 'pingreq') pings.push(Math.round(performance.now()) - start); });
      await waitFor(() => pings.length >= 2, 4000, 'two PINGREQs');
      assert.ok(pings[0]! >= 800 && pings[0]! <= 1500, `first PINGREQ after ${pings[0]} ms`);
      await sleep(100);
      assert.equal(c.connected, true);
    } finally {
      await clients.endAll();
      await broker.close();
    }
  });
});
