/**
 * Splitting topic names into levels, with a small cache: a broker sees the same topics again and again,
 * and a cache hit costs one hash lookup instead of an array and its strings.
 * The arrays handed out are shared: callers must not modify them.
 */
export class LevelCache {
  private readonly cache = new Map<string, readonly string[]>();

  /**
   * @param capacity how many topics to remember; when full the cache is emptied (cheap and good enough
   *   for a working set that fits, and no worse than no cache for one that does not).
   * @param maxLength longer topics are split every time, so the cache's memory stays bounded.
   */
  constructor(private readonly capacity = 1024, private readonly maxLength = 256) {}

  split(topic: string): readonly string[] {
    if (topic.length > this.maxLength) return topic.split('/');
    let levels = this.cache.get(topic);
    if (levels === undefined) {
      if (this.cache.size >= this.capacity) this.cache.clear();
      levels = topic.split('/');
      this.cache.set(topic, levels);
    }
    return levels;
  }
}
