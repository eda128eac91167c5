/**
 * `midge pub`: publish a message (or each line of stdin) and exit, like mosquitto_pub.
 * Same flags, error texts and exit codes; `-d` prints libmosquitto's log lines.
 */
import { MqttClient, PublishError } from '../client/index.js';
import { resolveOptions } from '../client/options.js';
import { reasonCodeText } from '../codec/constants.js';
import { rawArgs } from './argv.js';
import { attachDebug, connectTarget, describeConnectError, disconnectOptions, errPrint, identityError } from './client-connect.js';
import { midgeVersion, parseClientArgs, usageHint } from './client-options.js';
import { LineSplitter, MAX_PAYLOAD, readMessageFile, readMessageStdin } from './input.js';

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

/**
 * Publishes each stdin line as it arrives (without its '\n'). Resolves at end of input with true, or with
 * false (stdin closed) once a line is longer than an MQTT payload can be.
 */
async function publishLines(client: MqttClient, publish: (payload: Buffer) => void): Promise<boolean> {
  const stdin = process.stdin;
  const lines = new LineSplitter(publish);
  let wait: NodeJS.Timeout | undefined;
  return new Promise<boolean>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      if (!lines.push(chunk)) {
        stdin.off('data', onData);
        clearInterval(wait);
        stdin.destroy();
        resolve(false);
        return;
      }
      // back-pressure: stop reading while too many messages wait for the broker
      if (wait === undefined && client.pendingPublishes > 1000) {
        stdin.pause();
        wait = setInterval(() => {
          if (client.pendingPublishes < 500) { clearInterval(wait); wait = undefined; stdin.resume(); }
        }, 5);
      }
    };
    stdin.on('data', onData);
    stdin.once('end', () => {
      lines.end();
      resolve(true);
    });
    stdin.once('error', reject);
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('pub', argv, rawArgs(argv));
  if (parsed.type === 'help') { process.stdout.write(usage()); return 1; }
  if (parsed.type === 'version') { process.stdout.write(`midge pub version ${midgeVersion()}.\n`); return 1; }
  if (parsed.type === 'error') { process.stderr.write(parsed.text + usageHint(TOOL)); return 1; }
  const c = parsed.config;
  if (c.topic === undefined || c.pubMode === 'none') {
    process.stdout.write(usage());
    process.stderr.write('Error: Both topic and message must be supplied.\n');
    return 1;
  }
  // SIGINT and SIGTERM keep their default action, as in mosquitto_pub: the process ends at once (also
  // while it reads stdin), with the signal as its exit status, and the broker sees the connection drop
  let message = c.message ?? Buffer.alloc(0);
  if (c.pubMode === 'file' || c.pubMode === 'stdin-file') {
    const m = c.pubMode === 'file' ? readMessageFile(c.file!) : await readMessageStdin();
    if (typeof m === 'string') { errPrint(c, m); return 1; }
    message = m;
  }
  const idError = identityError(c);
  if (idError !== undefined) { errPrint(c, idError); return 1; }

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

  try {
    if (c.pubMode === 'stdin-line') {
      const pending = new Set<Promise<void>>();
      const whole = await publishLines(client, (line) => {
        const p = publish(line);
        pending.add(p);
        void p.then(() => pending.delete(p));
      });
      if (!whole) {
        errPrint(c, `Error: Input line longer than ${MAX_PAYLOAD} bytes, the largest MQTT payload.\n`);
        exitCode = 1;
      }
      await Promise.all(pending);
    } else {
      for (let i = 0; i < c.repeatCount && exitCode === 0; i++) {
        if (i > 0 && c.repeatDelay > 0) await new Promise((r) => setTimeout(r, c.repeatDelay));
        await publish(message);
      }
    }
  } finally {
    await client.end(disconnectOptions(c));
  }
  return exitCode;
}
