/**
 * mosquitto.conf syntax → BrokerConfig.
 *
 * A line is `key value...`; lines whose first non-blank character is `#` are comments; blank lines,
 * trailing whitespace and CRLF endings are fine. Every key is either supported (keys.ts), known but not
 * supported yet (unsupported.ts), or unknown: the last two are errors, never silently ignored. Every error
 * is a ConfigError naming the file and line.
 *
 * `include_dir DIR` (main file only) reads DIR/*.conf in code-unit order of the names; a relative DIR is
 * relative to the working directory, as in mosquitto.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { shorten, shortenPath } from '../util/text.js';
import { ConfigError } from './errors.js';
import { KEYS, type Loc, type Scope } from './keys.js';
import { defaultBrokerConfig, defaultListenerConfig, type BrokerConfig, type HttpListenerConfig, type ListenerConfig } from './options.js';
import { OBSOLETE_KEYS, UNSUPPORTED_KEYS, UNSUPPORTED_PREFIXES } from './unsupported.js';
import { applyBridgeKey, defaultBridgeConfig, finishBridge, isBridgeKey, type BridgeConfig, type BridgeScope } from './bridge.js';

const locations = new WeakMap<object, Map<string, Loc>>();

/**
 * Where a key was last given for this config (global keys) or listener (listener keys, and security keys
 * with per_listener_settings true): for errors found after parsing, such as "not supported by Midge yet".
 */
export function keyLocation(target: BrokerConfig | ListenerConfig | HttpListenerConfig, key: string): Loc | undefined {
  return locations.get(target)?.get(key);
}

function record(target: object, key: string, at: Loc): void {
  let m = locations.get(target);
  if (m === undefined) locations.set(target, (m = new Map()));
  m.set(key, at);
}

/** Reads and parses a config file (and the files it includes). */
export function parseConfigFile(path: string): BrokerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Unable to open config file ${shortenPath(path)} (${errorCode(err)})`, path, 0);
  }
  return parseConfig(text, path);
}

/**
 * Parses config text. `file` names it in errors and is the first entry of `sources`; `include_dir`
 * lines still read from disk.
 */
export function parseConfig(text: string, file: string): BrokerConfig {
  const p = new Parser(file);
  p.parseText(text, file);
  return p.finish();
}

interface ListenerInfo {
  /** Where the listener was made: its `listener` line, or the first line that made the default one. */
  readonly at: Loc;
  certfile?: Loc;
  keyfile?: Loc;
}

class Parser implements Scope, BridgeScope {
  readonly config = defaultBrokerConfig();
  private readonly explicit: ListenerConfig[] = [];
  private defaultL: ListenerConfig | undefined;
  private readonly info = new Map<ListenerConfig | HttpListenerConfig, ListenerInfo>();
  /** the HTTP listener while `http_listener` is the last listener line (certfile / keyfile apply to it) */
  private http: HttpListenerConfig | undefined;
  private firstSecurity: { key: string; at: Loc } | undefined;
  private readonly used = new Set<string>();
  private depth = 0;
  private currentBridge: BridgeConfig | undefined;

  constructor(private readonly mainFile: string) {
    this.config.sources.push(mainFile);
  }

  parseText(text: string, file: string): void {
    this.depth++;
    const lines = text.split('\n');
    if (lines[0]?.charCodeAt(0) === 0xfeff) lines[0] = lines[0].slice(1); // a UTF-8 byte order mark
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/^[ \t]+/, '').replace(/[ \t\r\n\v\f]+$/, '');
      if (line === '' || line.startsWith('#')) continue;
      this.parseLine(line, { file, line: i + 1 });
    }
    this.depth--;
  }

  private parseLine(line: string, at: Loc): void {
    const sp = line.search(/[ \t]/);
    const key = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp).replace(/^[ \t]+/, '');
    if (isBridgeKey(key)) {
      applyBridgeKey(this, key, rest, at);
      return;
    }
    const def = KEYS.get(key);
    if (def === undefined) {
      if (UNSUPPORTED_KEYS.has(key) || UNSUPPORTED_PREFIXES.some((p) => key.startsWith(p))) {
        throw new ConfigError(`The "${shorten(key)}" option is not supported by Midge yet`, at.file, at.line);
      }
      if (OBSOLETE_KEYS.has(key)) {
        throw new ConfigError(`The "${key}" option is obsolete (mosquitto ignores it too); remove it`,
          at.file, at.line);
      }
      throw new ConfigError(`Unknown configuration variable "${shorten(key)}"`, at.file, at.line);
    }
    if (rest === '') throw new ConfigError(`Empty ${key} value`, at.file, at.line);
    if (this.http !== undefined && key !== 'certfile' && key !== 'keyfile' && key !== 'port' && key !== 'bind_address' &&
        (def.where === 'listener' || (def.where === 'security' && this.config.perListenerSettings)) && key !== 'listener') {
      throw new ConfigError(`${key} does not apply to an http_listener (only certfile and keyfile do); put it after a listener line`, at.file, at.line);
    }
    let value = rest;
    if (def.arity !== 'rest') {
      const tokens = rest.split(/[ \t]+/);
      const max = def.arity === 'listener' ? 2 : 1;
      if (tokens.length > max) {
        throw new ConfigError(`Unexpected extra value "${shorten(tokens[max]!)}" for ${key}`, at.file, at.line);
      }
      value = tokens.join(' ');
    }
    def.apply(this, value, at, key);
    if (key === 'port' || key === 'bind_address') record(this.defaultListener(at), key, at);
    else if (key === 'http_listener') record(this.http!, 'http_listener', at);
    else if (this.http !== undefined && def.where === 'listener') record(this.http, key, at);
    else if (def.where === 'listener' || (def.where === 'security' && this.config.perListenerSettings)) record(this.listener(at), key, at);
    else record(this.config, key, at);
    if (key === 'log_type' || key === 'log_dest') record(this.config, `${key} ${value.split(/[ \t]/)[0]}`, at);
  }

  finish(): BrokerConfig {
    const all = this.defaultL ? [this.defaultL, ...this.explicit] : [...this.explicit];
    const seen = new Map<string, ListenerConfig>();
    for (const l of all) {
      const info = this.info.get(l)!;
      if (l.certfile !== undefined && l.keyfile === undefined) {
        throw new ConfigError(`The listener on port ${l.port} has a certfile but no keyfile; a TLS listener needs both`,
          info.certfile!.file, info.certfile!.line);
      }
      if (l.keyfile !== undefined && l.certfile === undefined) {
        throw new ConfigError(`The listener on port ${l.port} has a keyfile but no certfile; a TLS listener needs both`,
          info.keyfile!.file, info.keyfile!.line);
      }
      if (l.port !== 0) {
        const id = `${l.port} ${l.bindAddress ?? ''}`;
        const other = seen.get(id);
        if (other !== undefined) {
          const first = this.info.get(other)!.at;
          const where = l.bindAddress === undefined ? '' : ` and address ${shorten(l.bindAddress)}`;
          throw new ConfigError(`Duplicate listener on port ${l.port}${where} (the first is at ${first.file}:${first.line})`,
            info.at.file, info.at.line);
        }
        seen.set(id, l);
      }
    }
    this.config.listeners = all;
    const http = new Set<string>();
    for (const h of this.config.httpListeners) {
      const info = this.info.get(h)!;
      if ((h.certfile === undefined) !== (h.keyfile === undefined)) {
        const has = h.certfile !== undefined ? 'certfile' : 'keyfile';
        const at = info[has]!;
        throw new ConfigError(`The http_listener on port ${h.port} has a ${has} but no ${has === 'certfile' ? 'keyfile' : 'certfile'}; HTTPS needs both`, at.file, at.line);
      }
      const id = `${h.port} ${h.bindAddress ?? ''}`;
      if (h.port !== 0 && http.has(id)) throw new ConfigError(`Duplicate http_listener on port ${h.port}`, info.at.file, info.at.line);
      http.add(id);
      // the port of a WebSocket listener: one server for both (docs/http.md, "Sharing a WebSocket listener's port")
      const ws = h.port === 0 ? undefined : all.find((l) => l.port === h.port && l.protocol === 'websockets');
      if (ws !== undefined) {
        const wsAt = this.info.get(ws)!.at;
        const there = `the websockets listener on port ${h.port} (${wsAt.file}:${wsAt.line})`;
        if (h.certfile !== undefined) {
          throw new ConfigError(`The http_listener on port ${h.port} shares ${there}, so it takes that listener's TLS: give certfile and keyfile to the listener, not to the http_listener`, info.certfile!.file, info.certfile!.line);
        }
        if (ws.httpDir !== undefined) {
          throw new ConfigError(`The http_listener on port ${h.port} shares ${there}, which has an http_dir: both would answer plain HTTP requests; remove one`, info.at.file, info.at.line);
        }
        if (h.bindAddress !== undefined && h.bindAddress !== ws.bindAddress) {
          throw new ConfigError(`The http_listener on port ${h.port} shares ${there}, which is bound to ${ws.bindAddress ?? 'every address'}: give the http_listener no address (it takes the listener's) or the same one`, info.at.file, info.at.line);
        }
        h.sharesWebSocketListener = true;
      }
    }
    for (const b of this.config.bridges) finishBridge(b);
    return this.config;
  }

  // BridgeScope

  addBridge(name: string, at: Loc): void {
    const other = this.config.bridges.find((b) => b.name === name);
    if (other !== undefined) {
      throw new ConfigError(`Duplicate bridge name "${shorten(name)}" (the first is at ${other.at.file}:${other.at.line})`, at.file, at.line);
    }
    this.currentBridge = defaultBridgeConfig(name, at);
    this.config.bridges.push(this.currentBridge);
  }

  bridge(key: string, at: Loc): BridgeConfig {
    if (this.currentBridge === undefined) {
      throw new ConfigError(`The bridge option "${key}" must come after a "connection NAME" line`, at.file, at.line);
    }
    return this.currentBridge;
  }

  // Scope

  listener(at: Loc): ListenerConfig {
    return this.explicit[this.explicit.length - 1] ?? this.defaultListener(at);
  }

  defaultListener(at: Loc): ListenerConfig {
    if (this.defaultL === undefined) {
      this.defaultL = defaultListenerConfig();
      this.info.set(this.defaultL, { at });
    }
    return this.defaultL;
  }

  addHttpListener(port: number, address: string | undefined, at: Loc): void {
    const h: HttpListenerConfig = { port };
    if (address !== undefined) h.bindAddress = address;
    this.config.httpListeners.push(h);
    this.info.set(h, { at });
    this.http = h;
  }

  httpListener(): HttpListenerConfig | undefined {
    return this.http;
  }

  addListener(port: number, address: string | undefined, at: Loc): void {
    this.http = undefined;
    const l = defaultListenerConfig(port);
    if (address !== undefined) l.bindAddress = address;
    this.explicit.push(l);
    this.info.set(l, { at });
  }

  securityKey(key: string, at: Loc): void {
    this.firstSecurity ??= { key, at };
  }

  setPerListenerSettings(value: boolean, at: Loc): void {
    const first = this.firstSecurity;
    if (first !== undefined) {
      throw new ConfigError(`per_listener_settings must come before any security option ("${first.key}" is at ${first.at.file}:${first.at.line})`,
        at.file, at.line);
    }
    this.config.perListenerSettings = value;
  }

  tlsKey(l: ListenerConfig | HttpListenerConfig, key: 'certfile' | 'keyfile', at: Loc): void {
    this.info.get(l)![key] = at;
  }

  firstUse(key: 'log_type' | 'log_dest'): boolean {
    if (this.used.has(key)) return false;
    this.used.add(key);
    return true;
  }

  includeDir(dir: string, at: Loc): void {
    if (this.depth > 1) {
      throw new ConfigError('include_dir is only allowed in the main configuration file', at.file, at.line);
    }
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      throw new ConfigError(`Unable to open include_dir "${shortenPath(dir)}" (${errorCode(err)})`, at.file, at.line);
    }
    names = names.filter((n) => n.endsWith('.conf')).sort();
    for (const name of names) {
      const path = join(dir, name);
      if (resolve(path) === resolve(this.mainFile)) {
        throw new ConfigError(`include_dir "${shortenPath(dir)}" must not contain the main configuration file`, at.file, at.line);
      }
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (err) {
        throw new ConfigError(`Unable to open config file ${shortenPath(path)} (${errorCode(err)})`, at.file, at.line);
      }
      this.config.sources.push(path);
      this.parseText(text, path);
    }
  }
}

function errorCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
