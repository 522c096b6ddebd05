import { type CacheEntry, isEntry, type StoredValue } from '../types';
import type { EntryStore, IsrStore } from './types';

/** The JSON-safe shape written to Keyv. Bodies are base64: any serializer keeps them intact. */
interface SerializedEntry {
  v: 2;
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  gzip?: string;
  br?: string;
  etag: string;
  generatedAt: number;
  revalidate: number | false;
  maxStale: number | false;
  staleIfError: number | false;
  tags: string[];
  url: string;
  requestHeaders: Record<string, string>;
  readsCookies?: boolean;
  secure?: boolean;
  version?: string;
  storedAt?: number;
  renderedBy?: string;
}

/**
 * Adapts a store of JSON values — a Keyv instance, or any {@link IsrStore} of the user's — to
 * the {@link EntryStore} the cache talks to: entries go in as JSON (bodies in base64) and come
 * back as entries; anything else read back counts as absent. Keyv reports adapter failures as
 * `error` events (and `set` may still resolve), so failures are collected from both channels
 * and surfaced as rejections the guard fails open on; a store without `on` just throws.
 */
export class SerializedStore implements EntryStore {
  private errorCount = 0;
  private lastError: unknown;

  constructor(readonly store: IsrStore) {
    // Listening also keeps an adapter failure from becoming an unhandled 'error' event.
    store.on?.('error', (error) => {
      this.errorCount += 1;
      this.lastError = error;
    });
  }

  get(key: string): Promise<StoredValue | undefined> {
    // A value that came back was read: an error event meanwhile belongs to another call (a
    // refused write during an out-of-memory episode must not turn stored pages into misses).
    return this.watch(
      async () => {
        const raw = await this.store.get(key);
        return raw === undefined || raw === null ? undefined : deserialize(raw);
      },
      (value) => value !== undefined,
    );
  }

  set(key: string, value: StoredValue, ttlMs?: number): Promise<void> {
    return this.watch(async () => {
      const ok = await this.store.set(key, isEntry(value) ? serialize(value) : value, ttlMs);
      if (ok === false) throw new Error(`store refused to set ${key}`);
    });
  }

  delete(key: string): Promise<void> {
    return this.watch(async () => {
      await this.store.delete(key);
    });
  }

  /** Every stored value with its key, for inspection; nothing when the adapter cannot iterate. */
  async *entries(): AsyncGenerator<[string, StoredValue]> {
    const iterate = this.store.iterator;
    if (typeof iterate !== 'function') return;
    const pairs = iterate.call(this.store) as AsyncIterable<[string, unknown]>;
    for await (const [key, raw] of pairs) {
      const value = raw === undefined || raw === null ? undefined : deserialize(raw);
      if (value !== undefined) yield [key, value];
    }
  }

  getNumbers(keys: readonly string[]): Promise<(number | undefined)[]> {
    return this.watch(async () => {
      const raw = this.store.getMany
        ? await this.store.getMany([...keys])
        : await Promise.all(keys.map((key) => this.store.get(key)));
      return raw.map((value) => (typeof value === 'number' ? value : undefined));
    });
  }

  setNumbers(values: ReadonlyMap<string, number>, ttlMs: number): Promise<void> {
    return this.watch(async () => {
      const results = await Promise.all(
        [...values].map(([key, value]) => this.store.set(key, value, ttlMs)),
      );
      if (results.includes(false)) throw new Error('store refused to set a tag clock');
    });
  }

  /**
   * Keyv swallows adapter failures (a `get` resolves `undefined`, a `set` may resolve `true`)
   * and emits `error` instead: an error event during the call makes the call fail, so that an
   * outage is seen as one and not as an endless series of misses — unless `succeeded` says the
   * result itself proves the call worked (the event was another call's).
   */
  private async watch<T>(call: () => Promise<T>, succeeded?: (result: T) => boolean): Promise<T> {
    const before = this.errorCount;
    const result = await call();
    if (this.errorCount !== before && !succeeded?.(result)) throw toError(this.lastError);
    return result;
  }
}

function serialize(entry: CacheEntry): SerializedEntry {
  return {
    v: 2,
    status: entry.status,
    headers: entry.headers,
    body: entry.body.toString('base64'),
    gzip: entry.gzip?.toString('base64'),
    br: entry.br?.toString('base64'),
    etag: entry.etag,
    generatedAt: entry.generatedAt,
    revalidate: entry.revalidate,
    maxStale: entry.maxStale,
    staleIfError: entry.staleIfError,
    tags: entry.tags,
    url: entry.url,
    requestHeaders: entry.requestHeaders,
    readsCookies: entry.readsCookies,
    secure: entry.secure,
    version: entry.version,
    storedAt: entry.storedAt,
    renderedBy: entry.renderedBy,
  };
}

function deserialize(raw: unknown): StoredValue | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  if (Array.isArray((raw as { vary?: unknown }).vary)) return raw as StoredValue;
  if (typeof (raw as { latest?: unknown }).latest === 'string') return raw as StoredValue;
  const s = raw as SerializedEntry;
  // Anything not written by this version of the format is treated as absent (re-rendered).
  if (s.v !== 2 || typeof s.body !== 'string') return undefined;
  return {
    status: s.status,
    headers: s.headers,
    body: Buffer.from(s.body, 'base64'),
    gzip: s.gzip === undefined ? undefined : Buffer.from(s.gzip, 'base64'),
    br: s.br === undefined ? undefined : Buffer.from(s.br, 'base64'),
    etag: s.etag,
    generatedAt: s.generatedAt,
    revalidate: s.revalidate,
    maxStale: s.maxStale,
    staleIfError: s.staleIfError,
    tags: s.tags,
    url: s.url,
    requestHeaders: s.requestHeaders,
    readsCookies: s.readsCookies,
    secure: s.secure,
    version: s.version,
    storedAt: s.storedAt,
    renderedBy: typeof s.renderedBy === 'string' ? s.renderedBy : undefined,
  };
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
