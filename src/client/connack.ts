/**
 * What the broker's CONNACK says about the connection, with the 5.0 defaults filled in (spec 3.2.2.3):
 * `client.connack`. For 3.x every limit is the protocol's own (no limits announced).
 */
import type { ConnackPacket, Properties, QoS } from '../codec/types.js';

export interface ConnackInfo {
  sessionPresent: boolean;
  reasonCode: number;
  /** the raw 5.0 CONNACK properties (empty for 3.x) */
  properties: Properties;
  /** the id the broker assigned because CONNECT had an empty one */
  assignedClientIdentifier?: string;
  /** seconds: the broker's Server Keep Alive, which the client uses instead of its own keepalive */
  serverKeepAlive?: number;
  /** the broker's session expiry, when it differs from the one in CONNECT */
  sessionExpiryInterval?: number;
  /** QoS 1/2 publishes the broker accepts in flight at once (default 65535) */
  receiveMaximum: number;
  /** largest packet the broker accepts, in bytes (undefined: no limit) */
  maximumPacketSize?: number;
  /** highest topic alias the broker accepts from us (0: none) */
  topicAliasMaximum: number;
  maximumQoS: QoS;
  retainAvailable: boolean;
  wildcardSubscriptionAvailable: boolean;
  subscriptionIdentifiersAvailable: boolean;
  sharedSubscriptionAvailable: boolean;
  /** answer to requestResponseInformation: the base of response topics */
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  authenticationMethod?: string;
  authenticationData?: Buffer;
  userProperties?: Array<[string, string]>;
}

export function connackInfo(p: ConnackPacket): ConnackInfo {
  const props = p.properties ?? {};
  const info: ConnackInfo = {
    sessionPresent: p.sessionPresent,
    reasonCode: p.reasonCode,
    properties: props,
    receiveMaximum: props.receiveMaximum ?? 65535,
    topicAliasMaximum: props.topicAliasMaximum ?? 0,
    maximumQoS: (props.maximumQoS ?? 2) as QoS,
    retainAvailable: props.retainAvailable !== 0,
    wildcardSubscriptionAvailable: props.wildcardSubscriptionAvailable !== 0,
    subscriptionIdentifiersAvailable: props.subscriptionIdentifiersAvailable !== 0,
    sharedSubscriptionAvailable: props.sharedSubscriptionAvailable !== 0,
  };
  const copy = ['assignedClientIdentifier', 'serverKeepAlive', 'sessionExpiryInterval', 'maximumPacketSize', 'responseInformation',
    'serverReference', 'reasonString', 'authenticationMethod', 'authenticationData', 'userProperties'] as const;
  for (const key of copy) {
    if (props[key] !== undefined) (info as unknown as Record<string, unknown>)[key] = props[key];
  }
  return info;
}

/** The limits a client assumes before any CONNACK (and for 3.x). */
export const NO_LIMITS: ConnackInfo = connackInfo({ type: 'connack', sessionPresent: false, reasonCode: 0 });
