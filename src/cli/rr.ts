/**
 * `midge rr`: MQTT 5 request/response, like mosquitto_rr. Subscribes to the response topic (-e), then
 * publishes the request (-t, -m) with Response Topic and Correlation Data, prints the first response
 * (one without correlation data, or with ours) and exits.
 */
import { randomBytes } from 'node:crypto';
import { MqttClient } from '../client/index.js';
import { resolveOptions } from '../client/options.js';
import { rawArgs } from './argv.js';
import { attachDebug, connectTarget, describeConnectError, disconnectOptions, errPrint, identityError } from './client-connect.js';
import { midgeVersion, parseClientArgs, usageHint } from './client-options.js';
import { readMessageFile, readMessageStdin } from './input.js';
import { printMessage } from './sub.js';

const TOOL = 'midge rr';

export function usage(): string {
  return `midge rr is an mqtt client that can be used to publish a request message and wait for a response.
             Defaults to MQTT v5, where the Request-Response feature will be used, but v3.1.1 can also be used
             with v3.1.1 brokers.
midge rr version ${midgeVersion()}.

Usage: midge rr {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL} -e response-topic
                {-f file | -m message | -n | -s}
                [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval] [-F format] [-W timeout_secs]
                [-A bind_address] [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v] [-V protocol-version]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [{--cafile file | --capath dir} [--cert file] [--key file] [--insecure] [--tls-version version]]
                [-D command identifier value]
       midge rr --help

 -e : response topic. The client subscribes to it to wait for a response.
 -t : topic where the request message will be sent.
 -m : request payload; -f file, -s stdin, -n empty.
 -W : how long to wait for a response, in seconds.
 -F, -v, -N, -R : print the response as midge sub does.
 Connection, TLS and will options are as for midge pub and midge sub.
`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('rr', argv, rawArgs(argv));
  if (parsed.type === 'help') { process.stdout.write(usage()); return 1; }
  if (parsed.type === 'version') { process.stdout.write(`midge rr version ${midgeVersion()}.\n`); return 1; }
  if (parsed.type === 'error') { process.stderr.write(parsed.text + usageHint(TOOL)); return 1; }
  const c = parsed.config;
  if (c.topic === undefined || c.pubMode === 'none' || c.responseTopic === undefined) {
    process.stderr.write(`Error: All of topic, message, and response topic must be supplied.\n${usageHint(TOOL)}`);
    return 1;
  }
  if (c.props.publish.responseTopic !== undefined) {
    process.stderr.write('Error in PUBLISH properties: Duplicate response topic.\n');
    return 1;
  }
  const idError = identityError(c); // before the message is read, as in mosquitto_rr
  if (idError !== undefined) { errPrint(c, idError); return 1; }
  // SIGINT and SIGTERM keep their default action, as in mosquitto_rr: the process ends at once (also
  // while it reads stdin or waits for the response), with the signal as its exit status
  let message = c.message ?? Buffer.alloc(0);
  if (c.pubMode === 'file' || c.pubMode === 'stdin-file') {
    const m = c.pubMode === 'file' ? readMessageFile(c.file!) : await readMessageStdin();
    if (typeof m === 'string') { errPrint(c, m); return 1; }
    message = m;
  }

  let client: MqttClient;
  try {
    const { url, options } = connectTarget(c, false);
    client = new MqttClient(resolveOptions(url, options));
  } catch (e) {
    errPrint(c, describeConnectError(c, e).text);
    return 1;
  }
  attachDebug(client, c);

  const { topicAlias, ...props } = c.props.publish;
  if (c.protocolVersion === 5) {
    props.responseTopic = c.responseTopic;
    props.correlationData ??= Buffer.from(randomBytes(8).toString('hex'));
  }
  const correlation = props.correlationData;
  let exitCode = 0;
  let done = false;
  const finish = (code: number): void => {
    if (done) return;
    done = true;
    exitCode = code;
    void client.end(disconnectOptions(c));
  };
  client.on('message', (m) => {
    if (done || m.topic !== c.responseTopic) return;
    if (m.retain && c.noRetain) return;
    const theirs = m.properties?.correlationData;
    if (theirs && correlation && !theirs.equals(correlation)) return; // an answer to someone else's request
    printMessage(c, m);
    finish(0);
  });

  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  let timer: NodeJS.Timeout | undefined;
  try {
    await client.start();
    if (c.timeout > 0) timer = setTimeout(() => { errPrint(c, 'Timed out\n'); finish(27); }, c.timeout * 1000);
    await client.subscribe(c.responseTopic, { qos: c.qos });
    await client.publish(c.topic, message, {
      qos: c.qos, retain: c.retain, ...(Object.keys(props).length ? { properties: props } : {}), ...(topicAlias !== undefined ? { topicAlias } : {}),
    });
    await ended;
  } catch (e) {
    if (!done) {
      const d = describeConnectError(c, e);
      if (c.debug) for (const line of d.debugLines) process.stdout.write(`${line}\n`);
      errPrint(c, d.text);
      exitCode = d.exitCode;
    }
    await client.end({ force: true });
  } finally {
    clearTimeout(timer);
  }
  return exitCode;
}
