/**
 * `midge sub`: subscribe and print each message as it arrives, like mosquitto_sub.
 * Also holds the message printer (-v, -N, -F) that `midge rr` shares (mosquitto's sub_client_output.c).
 */
import { ConnectionRefusedError, MqttClient } from '../client/index.js';
import { resolveOptions } from '../client/options.js';
import { topicMatches } from '../topic/index.js';
import { rawArgs } from './argv.js';
import { attachDebug, connectTarget, describeConnectError, disconnectOptions, errPrint, identityError } from './client-connect.js';
import { midgeVersion, parseClientArgs, usageHint } from './client-options.js';
import { printMessage } from './sub-format.js';

export { formatMessage, printMessage } from './sub-format.js';

const TOOL = 'midge sub';

export function usage(): string {
  return `midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
midge sub version ${midgeVersion()}.

Usage: midge sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                 [-F format] [-W timeout_secs] [-A bind_address] [-i id] [-I id_prefix]
                 [-d] [-N] [--quiet] [-v] [-V protocol-version] [-o options-file]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers]
                   [--insecure] [--tls-alpn protocol] [--tls-version version] [--tls-use-os-certs]]
                 [-D command identifier value]
       midge sub --help

 -A : bind the outgoing socket to this host/ip address.
 -c : disable clean session/enable persistent client mode.
 -C : disconnect and exit after receiving the 'msg_count' messages.
 -d : enable debug messages.
 -D : define MQTT v5 properties: -D command identifier value.
 -E : exit once all subscriptions have been acknowledged by the broker.
 -F : output format: %t topic, %p payload, %q qos, %r retain, %m message id, %l payload length,
      %I ISO 8601 time, %U unix time, %j/%J JSON, %x/%X payload in hex, %%, @-strftime codes, \\n \\t escapes.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to an id assigned by the broker (MQTT 3.1: a random one).
 -I : define the client id as id_prefix appended with the process id.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
 -N : do not add an end of line character when printing the payload.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -q : quality of service level to use for the subscription. Defaults to 0.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -u : provide a username
 -U : unsubscribe from a topic. May be repeated.
 -v : print published messages verbosely.
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
 -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5).
 --help : display this message.
 --pretty : print formatted output rather than minimised output when using the JSON output format option.
 --quiet : don't print error messages.
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages.
 --will-payload, --will-qos, --will-retain, --will-topic : the client Will.
 --cafile, --capath, --cert, --key, --insecure, --tls-version : TLS, as for midge pub.
`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('sub', argv, rawArgs(argv));
  if (parsed.type === 'help') { process.stdout.write(usage()); return 1; }
  if (parsed.type === 'version') { process.stdout.write(`midge sub version ${midgeVersion()}.\n`); return 1; }
  if (parsed.type === 'error') { process.stderr.write(parsed.text + usageHint(TOOL)); return 1; }
  const c = parsed.config;
  if (c.noRetain && c.retainedOnly) {
    process.stderr.write("\nError: Combining '-R' and '--retained-only' makes no sense.\n");
    return 1;
  }
  const idError = identityError(c);
  if (idError !== undefined) { errPrint(c, idError); return 1; }
  let client: MqttClient;
  try {
    const { url, options } = connectTarget(c, true);
    options.resubscribe = false; // subscribed on every CONNACK below, as mosquitto_sub does
    client = new MqttClient(resolveOptions(url, options));
  } catch (e) {
    const d = describeConnectError(c, e);
    errPrint(c, d.text);
    return d.exitCode;
  }
  attachDebug(client, c);

  let exitCode = 0;
  let processing = true;
  let signalled = false;
  let count = 0;
  /** `drainMs`: how long DISCONNECT may wait for our own QoS 1/2 messages in flight */
  const stop = (code: number, reasonCode?: number, drainMs?: number): void => {
    if (!processing && code === 0) return;
    processing = false;
    exitCode ||= code;
    void client.end({
      ...disconnectOptions(c), ...(reasonCode !== undefined && c.protocolVersion === 5 ? { reasonCode } : {}),
      ...(drainMs !== undefined ? { timeout: drainMs } : {}),
    });
  };

  client.on('packetreceive', (p) => {
    if (p.type === 'suback' && c.debug && !c.quiet) process.stdout.write(`Subscribed (mid: ${p.packetId}): ${p.reasonCodes.join(', ')}\n`);
  });
  client.on('connect', () => {
    const subscribeProps = Object.keys(c.props.subscribe).length > 0 ? c.props.subscribe : undefined;
    const subs = c.topics.map((topic) => ({
      topic, qos: c.qos, ...(c.retainAsPublished ? { retainAsPublished: true } : {}), ...(c.noRetain ? { retainHandling: 2 as const } : {}),
    }));
    const subscribed = client.subscribe(subs, subscribeProps ? { properties: subscribeProps } : {}).catch(() => undefined);
    const unsubProps = Object.keys(c.props.unsubscribe).length > 0 ? c.props.unsubscribe : undefined;
    const unsubscribed = c.unsubTopics.map((t) => client.unsubscribe(t, unsubProps).catch(() => undefined));
    if (c.exitAfterSub) void Promise.all([subscribed, ...unsubscribed]).then(() => stop(0));
  });
  client.on('error', (e) => {
    // a reconnect that the broker refuses ends mosquitto_sub, like the first connection
    if (e instanceof ConnectionRefusedError) {
      errPrint(c, describeConnectError(c, e).text);
      stop(e.returnCode);
    }
  });
  client.on('message', (m) => {
    if (!processing) return;
    if (c.retainedOnly && !m.retain) { stop(0); return; }
    if (m.retain && c.noRetain) return;
    if (c.filterOuts.some((f) => topicMatches(f, m.topic))) return;
    if (c.removeRetained && m.retain) void client.publish(m.topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => undefined);
    printMessage(c, m);
    if (c.msgCount > 0 && ++count === c.msgCount) stop(0);
  });

  // SIGINT / SIGTERM: DISCONNECT and exit 0, as mosquitto_sub does, within a second even when the broker
  // does not answer or the connection is still being made. The handlers are `once`: a second signal has
  // the default action and ends the process at once.
  const onSignal = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    signalled = true;
    stop(0, 0x04, 1000);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // the reader of our output went away (`midge sub ... | head -1`): stop quietly
  const onOutputError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    processing = false;
    void client.end({ force: true });
  };
  process.stdout.on('error', onOutputError);
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  try {
    await client.start();
    if (c.timeout > 0) {
      timer = setTimeout(() => { errPrint(c, 'Timed out\n'); stop(27); }, c.timeout * 1000);
    }
    await ended;
  } catch (e) {
    if (!signalled) {
      const d = describeConnectError(c, e);
      if (c.debug) for (const line of d.debugLines) process.stdout.write(`${line}\n`);
      errPrint(c, d.text);
      exitCode = d.exitCode;
    }
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
  }
  return exitCode;
}
