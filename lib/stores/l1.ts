import type { TagClocks } from '../invalidation/tag-clocks';
import { MemoryTagClocks } from '../invalidation/tag-clocks';
import type { StoredValue } from '../types';
import { MemoryStore } from './memory';

/**
 * The in-process copy (L1) in front of a shared Redis store: a hit costs a Map lookup instead
 * of a round trip. It is kept coherent by the instances' events: a new entry elsewhere drops
 * our copy, an invalidation elsewhere is applied to our mirror of the tag clocks. It only
 * serves while those events are known to flow; the moment they may have been missed it is
 * emptied and stops serving, so it never serves a page another instance invalidated.
 */
export class L1 {
  private readonly store: MemoryStore;
  private mirror = new MemoryTagClocks();
  private servingState = false;
  /**
   * Changes whenever the event stream (re)starts or another instance replaces a page: copies
   * read before it must not be kept.
   */
  private epochValue = 0;

  constructor(maxSize: number) {
    this.store = new MemoryStore({ maxSize });
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** Whether it serves: only while the events that keep it coherent are known to flow. */
  get serving(): boolean {
    return this.servingState;
  }

  /** Bytes held now, and the most it may hold (`l1.maxSize`). */
  get size(): { bytes: number; entries: number; limit: number } {
    return { bytes: this.store.size, entries: this.store.count, limit: this.store.maxSize };
  }

  get clocks(): TagClocks {
    return this.mirror;
  }

  get(key: string): StoredValue | undefined {
    return this.servingState ? this.store.get(key) : undefined;
  }

  /** Keeps a copy read (or written) by this instance, unless the epoch moved since `epoch`. */
  put(key: string, value: StoredValue, epoch: number): void {
    if (this.servingState && epoch === this.epochValue) this.store.set(key, value);
  }

  drop(key: string): void {
    this.store.delete(key);
  }

  /**
   * Another instance stored or removed `key`: our copy goes, and so does any copy a lookup
   * begun before this event would put here (it may have read what was just replaced).
   */
  replacedElsewhere(key: string): void {
    this.epochValue += 1;
    this.store.delete(key);
  }

  bump(tags: readonly string[], kind: 'stale' | 'expire', at: number): void {
    this.mirror.bump(tags, kind, at);
  }

  setLive(live: boolean): void {
    this.epochValue += 1;
    this.store.clear();
    this.mirror = new MemoryTagClocks();
    this.servingState = live;
  }
}
