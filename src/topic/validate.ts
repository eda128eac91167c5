/**
 * Topic names and topic filters: validation and single-pair matching (MQTT 3.1.1 §4.7, 5.0 §4.7).
 *
 * Pure and allocation-free: these run on the broker's hot path (every PUBLISH checks its topic name).
 * Strings are JS strings (UTF-16); sizes are counted in UTF-8 bytes as on the wire.
 */

const SLASH = 0x2f; // '/'
const PLUS = 0x2b; // '+'
const HASH = 0x23; // '#'
const DOLLAR = 0x24; // '$'

/** The largest UTF-8 encoded string MQTT can carry (a two-byte length prefix) [MQTT-4.7.3-3]. */
export const MAX_TOPIC_BYTES = 65535;

/**
 * The default limit on the number of levels in a name or filter. Not an MQTT rule: mosquitto refuses more
 * than 200 `/` (TOPIC_HIERARCHY_LIMIT, after CVE-2019-11779, a SUBSCRIBE of ~65000 `/`), and so do we,
 * because the trie and the retained tree recurse once per level. Pass `Infinity` to check only the spec.
 */
export const MAX_TOPIC_LEVELS = 201;

/**
 * Checks the rules shared by names and filters: non-empty [MQTT-4.7.3-1], no U+0000 [MQTT-4.7.3-2],
 * no lone surrogate (it has no UTF-8 form) [MQTT-1.5.3-1], at most 65535 UTF-8 bytes [MQTT-4.7.3-3],
 * at most `maxLevels` levels.
 * `wildcards` says whether `+`/`#` may appear (the caller checks their placement).
 */
function scan(s: string, wildcards: boolean, maxLevels: number): boolean {
  const n = s.length;
  let levels = 1;
  if (n === 0 || n > MAX_TOPIC_BYTES) return false; // every UTF-16 unit is at least one UTF-8 byte
  // Most topics are short: 3 UTF-8 bytes per UTF-16 unit is the worst case, so count only when needed.
  const count = n * 3 > MAX_TOPIC_BYTES;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) return false;
      if (c === SLASH) {
        if (++levels > maxLevels) return false;
      } else if (!wildcards && (c === PLUS || c === HASH)) {
        return false;
      }
      bytes += 1;
    } else if (c < 0x800) {
      bytes += 2;
    } else if ((c & 0xf800) === 0xd800) {
      // A surrogate: must be a high one followed by a low one (4 UTF-8 bytes for the pair).
      if (c > 0xdbff || i + 1 >= n) return false;
      const d = s.charCodeAt(i + 1);
      if ((d & 0xfc00) !== 0xdc00) return false;
      i++;
      bytes += 4;
    } else {
      bytes += 3;
    }
  }
  return !count || bytes <= MAX_TOPIC_BYTES;
}

/**
 * A topic name as used in PUBLISH: no wildcards [MQTT-3.3.2-2], plus the rules of {@link scan}.
 * `$` topics are valid names; whether a client may publish to `$SYS/...` is the broker's decision.
 */
export function isValidTopicName(name: string, maxLevels = MAX_TOPIC_LEVELS): boolean {
  return scan(name, false, maxLevels);
}

/**
 * A topic filter as used in SUBSCRIBE/UNSUBSCRIBE: `+` occupies a whole level [MQTT-4.7.1-3],
 * `#` occupies a whole level and is the last one [MQTT-4.7.1-2], plus the rules of {@link scan}.
 * `$share/...` filters are checked by `parseSharedSubscription`, not here (they pass or fail here as
 * ordinary filters).
 */
export function isValidTopicFilter(filter: string, maxLevels = MAX_TOPIC_LEVELS): boolean {
  if (!scan(filter, true, maxLevels)) return false;
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) {
      if (i > 0 && filter.charCodeAt(i - 1) !== SLASH) return false;
      if (c === HASH) return i === n - 1;
      if (i + 1 < n && filter.charCodeAt(i + 1) !== SLASH) return false;
    }
  }
  return true;
}

/**
 * Whether `topic` (a valid topic name) matches `filter` (a valid topic filter), without splitting
 * either string. `#` matches its parent level too (`a/#` matches `a`) [MQTT-4.7.1-2]; `+` matches one
 * whole level, which may be empty; empty levels are real levels (`/a` has two). A filter starting with a
 * wildcard does not match a topic starting with `$` [MQTT-4.7.2-1]. Matching is by exact code units,
 * with no normalisation [MQTT-4.7.3-4].
 */
export function topicMatches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  if (fl === 0) return false;
  if (tl > 0 && topic.charCodeAt(0) === DOLLAR) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false; // [MQTT-4.7.2-1]
  }
  let fi = 0;
  let ti = 0;
  for (;;) {
    // Here fi and ti are both at the start of a level.
    const fc = fi < fl ? filter.charCodeAt(fi) : -1;
    if (fc === HASH) return true;
    if (fc === PLUS) {
      while (ti < tl && topic.charCodeAt(ti) !== SLASH) ti++;
      fi++;
    } else {
      let c: number;
      while (fi < fl && (c = filter.charCodeAt(fi)) !== SLASH) {
        if (ti >= tl || topic.charCodeAt(ti) !== c) return false;
        fi++;
        ti++;
      }
      if (ti < tl && topic.charCodeAt(ti) !== SLASH) return false;
    }
    // Both at the end of a level: at a '/' or at the end of the string.
    if (fi >= fl) return ti >= tl;
    if (ti >= tl) {
      // The topic has no more levels: only a final "/#" still matches (its parent level).
      return fi + 2 === fl && filter.charCodeAt(fi + 1) === HASH;
    }
    fi++;
    ti++;
  }
}
