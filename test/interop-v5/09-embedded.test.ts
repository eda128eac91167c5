/**
 * What only an embedded Midge offers (createBroker from the public surface, listening on 127.0.0.1 port 0),
 * with real clients: MQTT 5 enhanced authentication through the MIDGE-CHALLENGE method (MQTT.js
 * `properties.authenticationMethod` and `handleAuth`, with the client side written here from the method's
 * description: HMAC-SHA256(secret, challenge)), and server redirection (CONNACK 0x9D / 0x9C with a Server
 * Reference). Skipped with MIDGE_TEST_BROKER=mosquitto: mosquitto 2.0.11 has no enhanced-authentication
 * method without a plugin, and no redirection.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { createBroker, type Broker, type BrokerOptions } from '../../src/index.js';
import { challengeAuth } from '../../src/auth/challenge.js';
import { collect, connect } from '../helpers/mqttjs.js';
import { cleanup, isMosquitto, paho, T } from './_clients.js';

const METHOD = 'MIDGE-CHALLENGE';
type IAuthPacket = Parameters<MqttClient['handleAuth']>[0];
const ONLY_MIDGE = isMosquitto ? { ...T, skip: 'an embedded Midge broker: nothing to compare with mosquitto' } : T;

const brokers: Broker[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  await cleanup();
  await Promise.all(brokers.splice(0).map((b) => b.close()));
});

async function embedded(opts: Partial<BrokerOptions>): Promise<number> {
  const broker = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }], sysInterval: 0, ...opts });
  brokers.push(broker);
  const [addr] = await broker.listen();
  return addr!.port;
}

interface Outcome {
  client: MqttClient;
  connack?: IConnackPacket;
  auth: IAuthPacket[];
  error?: Error & { code?: number };
}

/**
 * MQTT.js v5 connecting with an authentication method; `answer` computes the client's AUTH data from the
 * server's. Resolves with what happened: CONNACK (accepted or not), the AUTH packets received, the error.
 */
function authConnect(port: number, opts: IClientOptions, answer: (challenge: Buffer) => Buffer): Promise<Outcome> {
  const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, ...opts });
  clients.push(client);
  const out: Outcome = { client, auth: [] };
  client.on('packetreceive', (p) => {
    if (p.cmd === 'auth') out.auth.push(p);
    if (p.cmd === 'connack') out.connack = p;
  });
  client.handleAuth = (packet, done) => {
    const challenge = packet.properties?.authenticationData ?? Buffer.alloc(0);
    done(undefined, {
      cmd: 'auth', reasonCode: 0x18,
      properties: { authenticationMethod: opts.properties?.authenticationMethod, authenticationData: answer(challenge) },
    });
  };
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(out), 4000);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve(out);
    });
    client.once('error', (err) => {
      clearTimeout(timer);
      out.error = err;
      resolve(out);
    });
  });
}

const hmac = (secret: string) => (challenge: Buffer): Buffer => createHmac('sha256', secret).update(challenge).digest();

describe('enhanced authentication (embedded broker, MIDGE-CHALLENGE)', () => {
  test('MQTT.js answers the AUTH challenge: the right secret connects, a wrong one gets CONNACK 0x86, an unknown method 0x8C', ONLY_MIDGE, async () => {
    const secrets: Record<string, string> = { alice: 's3cret' };
    const port = await embedded({ hooks: { authMethods: { [METHOD]: challengeAuth((u) => secrets[u]) } } });
    const props = (user: string) => ({ authenticationMethod: METHOD, authenticationData: Buffer.from(user) });

    const ok = await authConnect(port, { clientId: 'ea-ok', properties: props('alice') }, hmac('s3cret'));
    assert.equal(ok.error, undefined, ok.error?.message);
    assert.equal(ok.auth.length, 1);
    assert.equal(ok.auth[0]!.reasonCode, 0x18, 'AUTH: continue authentication');
    assert.equal(ok.auth[0]!.properties?.authenticationMethod, METHOD);
    assert.equal(ok.auth[0]!.properties?.authenticationData?.length, 32, 'a 32-byte challenge');
    assert.equal(ok.connack?.reasonCode, 0);
    assert.equal(ok.connack?.properties?.authenticationMethod, METHOD, 'CONNACK repeats the method');
    await ok.client.subscribeAsync('ea/t', { qos: 1 });
    const got = new Promise<string>((resolve) => ok.client.once('message', (_t, p) => resolve(p.toString())));
    await ok.client.publishAsync('ea/t', 'authenticated', { qos: 1 });
    assert.equal(await got, 'authenticated');

    const wrong = await authConnect(port, { clientId: 'ea-wrong', properties: props('alice') }, hmac('guess'));
    assert.equal(wrong.auth.length, 1, 'the challenge came');
    assert.equal(wrong.connack?.reasonCode, 0x86);
    assert.equal(wrong.error?.code, 0x86);
    const nobody = await authConnect(port, { clientId: 'ea-nobody', properties: props('mallory') }, hmac('s3cret'));
    assert.equal(nobody.connack?.reasonCode, 0x86);

    const unknown = await authConnect(port, { clientId: 'ea-scram', properties: { authenticationMethod: 'SCRAM-SHA-1' } }, hmac('x'));
    assert.equal(unknown.auth.length, 0);
    assert.equal(unknown.connack?.reasonCode, 0x8c, 'bad authentication method');
  });
});

describe('server redirection (embedded broker with serverReference)', () => {
  test('v5 clients get CONNACK 0x9D (server moved) or 0x9C (use another server) with the reference; 3.1.1 gets 3', ONLY_MIDGE, async () => {
    for (const [serverMoved, code] of [[true, 0x9d], [false, 0x9c]] as const) {
      const port = await embedded({ serverReference: 'other.example:1883', serverMoved });
      const js = await authConnect(port, { clientId: 'rd-js' }, () => Buffer.alloc(0));
      assert.equal(js.connack?.reasonCode, code);
      assert.equal(js.connack?.properties?.serverReference, 'other.example:1883');
      assert.equal(js.error?.code, code);
      const [, ack] = await paho(port, { clientId: 'rd-paho' });
      assert.deepEqual([ack.rc, ack.props?.ServerReference], [code, 'other.example:1883']);
      await assert.rejects(connect(port, { clientId: 'rd-311', protocolVersion: 4 }), /Server unavailable/);
    }
    // Control: the same clients are accepted by a broker without a server reference.
    const port = await embedded({});
    const js = await connect(port, { clientId: 'rd-js', protocolVersion: 5 });
    await js.subscribeAsync('rd/t', { qos: 1 });
    await js.publishAsync('rd/t', 'here', { qos: 1 });
    assert.equal((await collect(js, 1))[0]!.payload, 'here');
    const [, ack] = await paho(port, { clientId: 'rd-paho' });
    assert.equal(ack.rc, 0);
  });
});
