/**
 * `midge pub`: publish a message (or each line of stdin) and exit, like mosquitto_pub.
 * Same flags, error texts and exit codes; `-d` prints libmosquitto's log lines.
 */
import { readFileSync } from 'node:fs';
import { MqttClient, PublishError } from '../client/index.js';
import { resolveOptions } from '../client/options.js';
import { reasonCodeText } from '../codec/constants.js';
import { attachDebug, connectTarget, describeConnectError, disconnectOptions, errPrint } from './client-connect.js';
import { midgeVersion, parseClientArgs, usageHint } from './client-options.js';

const TOOL = 'midge pub';

export function usage(): string {
  return `midge pub is a simple mqtt client that will publish a message on a single topic and exit.
midge pub version ${midgeVersion()}.

Usage: midge pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                 {-f file | -l | -n | -m message | -s}
                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                 [-A bind_address] [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]
                 [-V protocol-version] [-o options-file]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers]
                   [--insecure] [--tls-alpn protocol] [--tls-version version] [--tls-use-os-certs]]
                 [-D command identifier value]
       midge pub --help

 -A : bind the outgoing socket to this host/ip address.
 -c : disable clean session/enable persistent client mode.
 -d : enable debug messages.
 -D : define MQTT v5 properties: -D command identifier value (command: connect, publish, will, disconnect).
 -f : send the contents of a file as the message.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to an id assigned by the broker (MQTT 3.1: a random one).
 -I : define the client id as id_prefix appended with the process id.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -M : the maximum inflight messages for QoS 1/2. Defaults to 20.
 -n : send a null (zero length) message.
 -o : read options from a file, one per line.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -q : quality of service level to use for all messages. Defaults to 0.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 -u : provide a username
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5).
 --help : display this message.
 --quiet : don't print error messages.
 --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
 --will-payload : payload for the client Will.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.
 --cafile : path to a file containing trusted CA certificates to enable encrypted communication.
 --capath : path to a directory containing trusted CA certificates.
 --cert : client certificate for authentication, if required by server.
 --key : client private key for authentication, if required by server.
 --tls-version : TLS protocol version, can be one of tlsv1.3 tlsv1.2 or tlsv1.1.
 --insecure : do not check that the server certificate hostname matches the remote hostname.
`;
}

function readStdin(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.once('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.once('error', reject);
  });
}

/** Publishes each stdin line as it arrives (without its '\n'); resolves at end of input. */
async function publishLines(client: MqttClient, publish: (payload: Buffer) => void): Promise<void> {
  let rest = Buffer.alloc(0);
  const stdin = process.stdin;
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      let data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
        publish(data.subarray(0, nl));
        data = data.subarray(nl + 1);
      }
      rest = Buffer.from(data);
      // back-pressure: stop reading while too many messages wait for the broker
      if (client.pendingPublishes > 1000) {
        stdin.pause();
        const wait = setInterval(() => {
          if (client.pendingPublishes < 500) { clearInterval(wait); stdin.resume(); }
        }, 5);
      }
    };
    stdin.on('data', onData);
    stdin.once('end', () => {
      if (rest.length > 0) publish(rest);
      resolve();
    });
    stdin.once('error', reject);
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('pub', argv);
  if (parsed.type === 'help') { process.stdout.write(usage()); return 1; }
  if (parsed.type === 'version') { process.stdout.write(`midge pub version ${midgeVersion()}.\n`); return 1; }
  if (parsed.type === 'error') { process.stderr.write(parsed.text + usageHint(TOOL)); return 1; }
  const c = parsed.config;
  if (c.topic === undefined || c.pubMode === 'none') {
    process.stdout.write(usage());
    process.stderr.write('Error: Both topic and message must be supplied.\n');
    return 1;
  }
  let message = c.message ?? Buffer.alloc(0);
  if (c.pubMode === 'file') {
    try {
      message = readFileSync(c.file!);
    } catch {
      errPrint(c, `Error: Unable to open file "${c.file}".\nError loading input file "${c.file}".\n`);
      return 1;
    }
  } else if (c.pubMode === 'stdin-file') {
    message = await readStdin();
  }

  let client: MqttClient;
  try {
    const { url, options } = connectTarget(c, c.pubMode === 'stdin-line');
    client = new MqttClient(resolveOptions(url, options));
    attachDebug(client, c);
    await client.start();
  } catch (e) {
    const d = describeConnectError(c, e);
    if (c.debug) for (const line of d.debugLines) process.stdout.write(`${line}\n`);
    errPrint(c, d.text);
    return d.exitCode;
  }
  if (c.topic === '') {
    errPrint(c, "Error: Invalid input. Does your topic contain '+' or '#'?\n");
    await client.end({ force: true });
    return 1;
  }

  let exitCode = 0;
  // -D publish topic-alias N: the first PUBLISH carries the topic and the alias, the others only the alias
  const { topicAlias, ...publishProps } = c.props.publish;
  const properties = Object.keys(publishProps).length > 0 ? publishProps : undefined;
  const options = { qos: c.qos, retain: c.retain, ...(properties ? { properties } : {}), ...(topicAlias !== undefined ? { topicAlias } : {}) };
  const publish = (payload: Buffer): Promise<void> =>
    client.publish(c.topic!, payload, options).then(
      () => undefined,
      (e: unknown) => {
        if (e instanceof PublishError) {
          errPrint(c, `Warning: Publish ${e.packetId} failed: ${reasonCodeText(e.reasonCode)}.\n${e.reasonString ? `${e.reasonString}\n` : ''}`);
        } else {
          const d = describeConnectError(c, e);
          errPrint(c, d.text);
          exitCode = d.exitCode;
        }
      },
    );

  const stop = (): void => { void client.end({ force: true }); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (c.pubMode === 'stdin-line') {
      const pending = new Set<Promise<void>>();
      await publishLines(client, (line) => {
        const p = publish(line);
        pending.add(p);
        void p.then(() => pending.delete(p));
      });
      await Promise.all(pending);
    } else {
      for (let i = 0; i < c.repeatCount && exitCode === 0; i++) {
        if (i > 0 && c.repeatDelay > 0) await new Promise((r) => setTimeout(r, c.repeatDelay));
        await publish(message);
      }
    }
  } finally {
    await client.end(disconnectOptions(c));
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return exitCode;
}
