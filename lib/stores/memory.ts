import type { StoredValue } from '../types';
import { fail } from '../validate';
import type { EntryStore } from './types';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Total bytes the store may hold (bodies, their br/gzip variants and headers).
   * The least recently used entries are evicted past it.
   * @default 52428800 (50 MB)
   */
  maxSize?: number;
}

const DEFAULT_MAX_SIZE = 50 * 1024 * 1024;
/** Rough per-entry bookkeeping cost: the Map slot, the object and its small fields. */
const ENTRY_OVERHEAD = 256;

/**
 * The embedded default store: one process, bounded by bytes, least recently used out first.
 * It keeps entries as objects (no serialisation), so a hit costs a Map lookup.
 */
export class MemoryStore implements EntryStore {
  readonly maxSize: number;
  private readonly items = new Map<string, { value: StoredValue; size: number }>();
  private bytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    const maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
    if (typeof maxSize !== 'number' || !Number.isFinite(maxSize) || maxSize <= 0) {
      fail('MemoryStore maxSize', 'a positive number of bytes', options.maxSize);
    }
    this.maxSize = maxSize;
  }

  /** Bytes currently held. */
  get size(): number {
    return this.bytes;
  }

  /** Number of keys currently held. */
  get count(): number {
    return this.items.size;
  }

  get(key: string): StoredValue | undefined {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    // Re-insert to mark it most recently used: Map keeps insertion order.
    this.items.delete(key);
    this.items.set(key, item);
    return item.value;
  }

  /** The value at `key` without marking it used (inspection must not reorder the LRU). */
  peek(key: string): StoredValue | undefined {
    return this.items.get(key)?.value;
  }

  set(key: string, value: StoredValue): void {
    const size = sizeOf(key, value);
    this.delete(key);
    if (size > this.maxSize) return; // could never fit; keeping it would evict everything
    this.items.set(key, { value, size });
    this.bytes += size;
    for (const [oldest, item] of this.items) {
      if (this.bytes <= this.maxSize) break;
      this.items.delete(oldest);
      this.bytes -= item.size;
    }
  }

  delete(key: string): void {
    const item = this.items.get(key);
    if (item === undefined) return;
    this.items.delete(key);
    this.bytes -= item.size;
  }

  /** Every key, oldest first (for inspection and prefix walks). */
  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  clear(): void {
    this.items.clear();
    this.bytes = 0;
  }
}

function sizeOf(key: string, value: StoredValue): number {
  let size = ENTRY_OVERHEAD + key.length * 2;
  if ('vary' in value) return size + value.vary.join().length * 2;
  if ('latest' in value) return size + value.latest.length * 2;
  size += value.body.length + (value.gzip?.length ?? 0) + (value.br?.length ?? 0);
  for (const name in value.headers) size += (name.length + String(value.headers[name]).length) * 2;
  for (const tag of value.tags) size += tag.length * 2;
  return size + value.url.length * 2 + value.etag.length * 2;
}
