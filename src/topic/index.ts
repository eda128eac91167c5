/** Topic names and filters: validation, matching, `$share` parsing, subscription and retained indexes. */
export { MAX_TOPIC_BYTES, MAX_TOPIC_LEVELS, isValidTopicName, isValidTopicFilter, topicMatches } from './validate.js';
export { SHARE_PREFIX, parseSharedSubscription, isShareError } from './shared.js';
export type { SharedSubscription, ShareError } from './shared.js';
export { SubscriptionTrie } from './trie.js';
export { TopicTree } from './retained.js';
