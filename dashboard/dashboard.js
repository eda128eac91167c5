// The Midge dashboard: polls /metrics (charts) and the admin API (/api/v1/...) every second or two, and
// talks MQTT over WebSockets with the project's browser client (./midge-client.js). Plain JS, no CDN.
import { connect, ConnectionRefusedError } from './midge-client.js';

const $ = (id) => document.getElementById(id);
const POINTS = 60;

async function getJson(path, init) {
  const r = await fetch(path, { cache: 'no-store', ...init });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error ?? `${r.status} ${r.statusText}`);
  return body;
}

function setStatus(el, text, ok) {
  el.textContent = text;
  el.className = `status ${ok === undefined ? '' : ok ? 'ok' : 'bad'}`;
}

// ---- charts ---------------------------------------------------------------------------------------------

/** A line chart of two series on a <canvas>; its data-* attributes say what it shows (the tests read them). */
class Chart {
  constructor(canvas, format) {
    this.canvas = canvas;
    this.format = format;
    this.a = [];
    this.b = [];
    this.updates = 0;
  }

  push(a, b) {
    this.a.push(a);
    this.b.push(b);
    if (this.a.length > POINTS) { this.a.shift(); this.b.shift(); }
    this.updates++;
    const sum = (xs) => xs.reduce((s, x) => s + x, 0);
    const d = this.canvas.dataset;
    d.updates = String(this.updates);
    d.lastA = String(a);
    d.lastB = String(b);
    d.sumA = String(sum(this.a));
    d.sumB = String(sum(this.b));
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const ctx = c.getContext('2d');
    const w = c.width, h = c.height, pad = 4;
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...this.a, ...this.b) * 1.15;
    ctx.strokeStyle = '#e6e9ef';
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      const y = Math.round((h * i) / 4) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
    }
    const line = (xs, color) => {
      if (xs.length === 0) return;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      xs.forEach((v, i) => {
        const x = w - (xs.length - 1 - i) * (w / (POINTS - 1));
        const y = h - pad - (v / max) * (h - 2 * pad);
        if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line(this.a, '#2a6fdb');
    line(this.b, '#d9822b');
    ctx.fillStyle = '#7a8599';
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(this.format(max), 4, 12);
  }
}

const fmtNum = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n * 10) / 10}`);
const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${Math.round(n)} B`);

const charts = {
  messages: new Chart($('chart-messages'), fmtNum),
  bytes: new Chart($('chart-bytes'), fmtBytes),
  connections: new Chart($('chart-connections'), fmtNum),
};

/** Sums of the metrics the charts need, from the Prometheus text format. */
function parseMetrics(text) {
  const want = ['midge_messages_received_total', 'midge_messages_sent_total', 'midge_bytes_received_total',
    'midge_bytes_sent_total', 'midge_connections_total', 'midge_clients_connected'];
  const out = Object.fromEntries(want.map((n) => [n, 0]));
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] in out) out[m[1]] += Number(m[2]);
  }
  return out;
}

let previous;
async function pollMetrics() {
  try {
    const r = await fetch('/metrics', { cache: 'no-store' });
    if (!r.ok) throw new Error(`/metrics: ${r.status}`);
    const now = performance.now();
    const m = parseMetrics(await r.text());
    if (previous !== undefined) {
      const dt = Math.max(0.001, (now - previous.at) / 1000);
      const rate = (k) => Math.max(0, (m[k] - previous.m[k]) / dt);
      const msgIn = rate('midge_messages_received_total'), msgOut = rate('midge_messages_sent_total');
      const bIn = rate('midge_bytes_received_total'), bOut = rate('midge_bytes_sent_total');
      const conn = rate('midge_connections_total');
      charts.messages.push(msgIn, msgOut);
      charts.bytes.push(bIn, bOut);
      charts.connections.push(conn, m.midge_clients_connected);
      $('messages-value').textContent = `${fmtNum(msgIn)} in · ${fmtNum(msgOut)} out`;
      $('bytes-value').textContent = `${fmtBytes(bIn)} in · ${fmtBytes(bOut)} out`;
      $('connections-value').textContent = `${fmtNum(conn)}/s · ${m.midge_clients_connected} connected`;
    }
    previous = { at: now, m };
    setStatus($('status'), 'live', true);
  } catch (err) {
    setStatus($('status'), `metrics: ${err.message}`, false);
  }
  setTimeout(pollMetrics, 1000);
}

// ---- broker info and clients ----------------------------------------------------------------------------

async function loadBroker() {
  const b = await getJson('/api/v1/broker');
  $('broker-info').textContent = `version ${b.version} · up ${b.uptimeSeconds} s · ${b.clientsConnected} clients · ${b.subscriptions} subscriptions · ${b.retainedMessages} retained`;
  return b;
}

let clientsTimer;
async function loadClients() {
  clearTimeout(clientsTimer);
  try {
    const q = $('client-search').value.trim();
    const r = await getJson(`/api/v1/clients?limit=1000${q ? `&search=${encodeURIComponent(q)}` : ''}`);
    $('clients-total').textContent = `(${r.total})`;
    const body = $('clients-body');
    body.replaceChildren(...r.items.map(clientRow));
    await loadBroker();
  } catch (err) {
    $('clients-total').textContent = `(${err.message})`;
  }
  clientsTimer = setTimeout(loadClients, 2000);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

function clientRow(c) {
  const tr = document.createElement('tr');
  tr.dataset.clientId = c.id;
  const since = Math.max(0, Math.round((Date.now() - c.connectedAt) / 1000));
  tr.append(cell(c.id), cell(c.username ?? ''), cell(`${c.remoteAddress}:${c.remotePort}`),
    cell({ 3: '3.1', 4: '3.1.1', 5: '5.0' }[c.protocolVersion] ?? String(c.protocolVersion)), cell(`${c.keepalive} s`),
    cell(String(c.subscriptions)), cell(String(c.queued)), cell(String(c.inflight)), cell(`${since} s ago`));
  const td = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'disconnect';
  button.textContent = 'disconnect';
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await getJson(`/api/v1/clients/${encodeURIComponent(c.id)}`, { method: 'DELETE' });
    } catch (err) {
      button.textContent = err.message;
    }
    await loadClients();
  });
  td.append(button);
  tr.append(td);
  return tr;
}

// ---- retained topics ------------------------------------------------------------------------------------

async function loadTopics() {
  try {
    // '#' does not match $SYS topics: they are asked for apart
    const [r, sys] = await Promise.all(['#', '$SYS/#'].map((f) => getJson(`/api/v1/retained?filter=${encodeURIComponent(f)}&limit=1000`)));
    const total = r.total + sys.total, shown = r.items.length + sys.items.length;
    $('topics-total').textContent = `(${total}${total > shown ? `, ${shown} shown` : ''})`;
    const root = { children: new Map() };
    for (const m of [...r.items, ...sys.items]) {
      let node = root;
      for (const level of m.topic.split('/')) {
        if (!node.children.has(level)) node.children.set(level, { children: new Map() });
        node = node.children.get(level);
      }
      node.message = m;
    }
    $('topic-tree').replaceChildren(renderLevel(root));
  } catch (err) {
    $('topics-total').textContent = `(${err.message})`;
  }
}

function renderLevel(node) {
  const ul = document.createElement('ul');
  for (const [name, child] of [...node.children].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.textContent = name === '' ? '(empty)' : name;
    li.append(label);
    if (child.message) {
      li.dataset.topic = child.message.topic;
      const v = document.createElement('span');
      v.className = 'payload';
      v.textContent = child.message.payload ?? `(${child.message.bytes} bytes, binary)`;
      v.title = `QoS ${child.message.qos}, ${child.message.bytes} bytes`;
      li.append(v);
    }
    if (child.children.size > 0) li.append(renderLevel(child));
    ul.append(li);
  }
  return ul;
}

// ---- console: MQTT over WebSockets from the page ------------------------------------------------------------

let client;

function log(text) {
  const li = document.createElement('li');
  li.textContent = text;
  const ol = $('console-log');
  ol.append(li);
  while (ol.children.length > 500) ol.firstChild.remove();
  ol.scrollTop = ol.scrollHeight;
}

/** the WebSocket URL of the console (from the broker's listeners), once known */
let consoleUrl;

/** The refusal notice under the console's login form; no text hides it. */
function showRefused(text) {
  const p = $('console-refused');
  p.textContent = text ?? '';
  p.hidden = text === undefined;
}

async function startConsole(info) {
  const status = $('console-status');
  const pageTls = location.protocol === 'https:';
  const ws = info.listeners.filter((l) => l.protocol === 'websockets');
  const pick = ws.find((l) => l.tls === pageTls) ?? ws[0];
  if (!pick) {
    setStatus(status, 'no WebSocket listener (add one with `protocol websockets`)', false);
    return;
  }
  const wildcard = pick.host === '0.0.0.0' || pick.host === '::' || pick.host === '';
  const host = wildcard ? location.hostname : pick.host.includes(':') ? `[${pick.host}]` : pick.host;
  consoleUrl = `${pick.tls ? 'wss' : 'ws'}://${host}:${pick.port}/mqtt`;
  // without a login first; a broker with allow_anonymous false refuses, and the page says so
  await connectConsole(undefined, undefined);
}

/**
 * (Re)connects the console's client, with a user name and password when given. They go to the client's
 * connect() only: never stored (no localStorage, no cookie), never shown, never logged; the client keeps
 * them in memory for its reconnects until the page is closed or another login replaces it.
 */
async function connectConsole(username, password) {
  const status = $('console-status');
  const section = $('console');
  if (consoleUrl === undefined) return;
  const url = consoleUrl;
  const old = client;
  client = undefined;
  section.dataset.connected = 'false';
  delete section.dataset.refused;
  if (old) await old.end({ force: true }).catch(() => {});
  const who = username ? ` as user ${username}` : '';
  setStatus(status, `connecting to ${url}${who}…`);
  showRefused(undefined);
  const options = { clientId: `dashboard-${Math.random().toString(16).slice(2, 10)}`, keepalive: 30 };
  if (username) options.username = username;
  if (password) options.password = password;
  let c;
  try {
    c = await connect(url, options);
  } catch (err) {
    if (err instanceof ConnectionRefusedError) {
      section.dataset.refused = String(err.returnCode);
      setStatus(status, `refused by the broker (CONNACK ${err.returnCode})`, false);
      showRefused(`The broker refused the connection${who}: ${err.message} (CONNACK code ${err.returnCode}). `
        + (username || password ? 'Check the user name and password, then press connect.' : 'It may require a login: enter a user name and password, then press connect.'));
    } else {
      setStatus(status, `${url}: ${err.message}`, false);
    }
    return;
  }
  client = c;
  const connected = `connected to ${url} as ${c.clientId}${username ? ` (user ${username})` : ''}`;
  setStatus(status, connected, true);
  // the events of a client that a new login replaced change nothing
  c.on('offline', () => { if (client === c) setStatus(status, 'offline, reconnecting…', false); });
  c.on('connect', () => { if (client === c) setStatus(status, connected, true); });
  c.on('error', () => {});
  c.on('message', (m) => {
    if (client !== c) return;
    log(`${m.topic} ${m.retain ? '(retained) ' : ''}q${m.qos}: ${new TextDecoder().decode(m.payload)}`);
  });
  section.dataset.connected = 'true';
}

$('connect-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const username = $('mqtt-username').value.trim();
  const pw = $('mqtt-password');
  const password = pw.value;
  // the password leaves the page's DOM at once; the client holds it (in memory) for its reconnects
  pw.value = '';
  const button = $('connect-button');
  button.disabled = true;
  try {
    await connectConsole(username || undefined, password || undefined);
  } finally {
    button.disabled = false;
  }
});

$('subscribe-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!client) return;
  const filter = $('sub-filter').value;
  try {
    const granted = await client.subscribe(filter, { qos: Number($('sub-qos').value) });
    log(`subscribed to ${filter} (granted QoS ${granted})`);
  } catch (err) {
    log(`subscribe ${filter} failed: ${err.message}`);
  }
});

$('publish-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  if (!client) return;
  const topic = $('pub-topic').value;
  try {
    await client.publish(topic, $('pub-payload').value, { qos: Number($('pub-qos').value), retain: $('pub-retain').checked });
    log(`published to ${topic}`);
  } catch (err) {
    log(`publish to ${topic} failed: ${err.message}`);
  }
});

$('client-search').addEventListener('input', () => loadClients());
$('topics-refresh').addEventListener('click', () => loadTopics());

async function main() {
  pollMetrics();
  loadClients();
  loadTopics();
  setInterval(loadTopics, 5000);
  try {
    await startConsole(await loadBroker());
  } catch (err) {
    setStatus($('console-status'), err.message, false);
  }
}
main();
