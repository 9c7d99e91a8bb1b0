/**
 * A least-recently-used map bounded by bytes rather than entries: image encodings range from a
 * few kilobytes (tiny preset) to megabytes (576 CLIP-L patches), so a count limit would either
 * waste memory or blow it. A Map keeps insertion order; touching an entry re-inserts it, so the
 * first key is always the least recently used.
 */

export interface LruStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

export class ByteLru<V> {
  private readonly map = new Map<string, { value: V; bytes: number }>();
  private used = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxBytes: number) {
    if (!(Number.isFinite(maxBytes) && maxBytes >= 0))
      throw new Error(`ByteLru: maxBytes must be a non-negative number, got ${maxBytes}`);
  }

  get(key: string): V | undefined {
    const entry = this.map.get(key);
    if (!entry) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, entry);
    return entry.value;
  }

  /** Look without counting or touching (for tests and stats). */
  peek(key: string): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Store `value`; an entry larger than the whole budget is not kept. Evicts the oldest first. */
  set(key: string, value: V, bytes: number): void {
    if (!(Number.isFinite(bytes) && bytes >= 0))
      throw new Error(`ByteLru.set(${key}): bytes must be a non-negative number, got ${bytes}`);
    const old = this.map.get(key);
    if (old) {
      this.used -= old.bytes;
      this.map.delete(key);
    }
    if (bytes > this.maxBytes) return;
    this.map.set(key, { value, bytes });
    this.used += bytes;
    for (const [k, e] of this.map) {
      if (this.used <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= e.bytes;
      this.evictions++;
    }
  }

  stats(): LruStats {
    return {
      entries: this.map.size,
      bytes: this.used,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
    };
  }
}
