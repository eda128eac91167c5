/**
 * Shared subscriptions (MQTT 5.0 §4.8.2): `$share/{ShareName}/{filter}`.
 *
 * API choice: {@link parseSharedSubscription} never throws. It returns
 *   - `undefined` when the filter is not a shared subscription (it does not start with `$share/`),
 *   - `{ group, filter }` for a valid one,
 *   - `{ error }` (a sentence saying what is wrong) for a filter that starts with `$share/` but breaks a
 *     rule. The broker answers such a SUBSCRIBE with reason code 0x8F (Topic Filter invalid).
 * Tell the two object shapes apart with `'error' in result` or {@link isShareError}.
 */
import { isValidTopicFilter } from './validate.js';

export const SHARE_PREFIX = '$share/';

export interface SharedSubscription {
  /** The ShareName: one or more characters, none of them `/`, `+` or `#`. */
  readonly group: string;
  /** The topic filter after the ShareName; a valid, non-shared topic filter. */
  readonly filter: string;
}

export interface ShareError {
  readonly error: string;
}

export function isShareError(r: SharedSubscription | ShareError | undefined): r is ShareError {
  return r !== undefined && 'error' in r;
}

export function parseSharedSubscription(filter: string): SharedSubscription | ShareError | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const start = SHARE_PREFIX.length;
  const slash = filter.indexOf('/', start);
  const group = slash < 0 ? filter.slice(start) : filter.slice(start, slash);
  if (group.length === 0) {
    return { error: `shared subscription "${filter}" has an empty ShareName [MQTT-4.8.2-1]` };
  }
  for (let i = 0; i < group.length; i++) {
    const c = group.charCodeAt(i);
    if (c === 0x2b || c === 0x23) {
      return { error: `the ShareName "${group}" must not contain "+" or "#" [MQTT-4.8.2-2]` };
    }
    if (c === 0) return { error: 'the ShareName must not contain U+0000 [MQTT-4.7.3-2]' };
  }
  if (slash < 0) {
    return { error: `the ShareName in "${filter}" must be followed by "/" and a topic filter [MQTT-4.8.2-2]` };
  }
  const inner = filter.slice(slash + 1);
  if (inner.length === 0) {
    return { error: `shared subscription "${filter}" has an empty topic filter [MQTT-4.8.2-2]` };
  }
  if (!isValidTopicFilter(inner)) {
    return { error: `shared subscription "${filter}" has an invalid topic filter "${inner}"` };
  }
  return { group, filter: inner };
}
