/**
 * Which cached pages carry which tags, for `mode: 'regenerate'` (the only mode that needs to
 * know the pages: `stale` and `expire` are one clock write each). Kept in this process,
 * bounded by a number of pages: each indexed page costs one record plus one Set slot per tag
 * (its own tags, its page tag and one layout tag per path segment), about 0.5 KB for a page
 * three segments deep with two tags, so the default 20,000 pages cost about 10 MB at most.
 * Past the bound the least recently indexed pages are forgotten: a forgotten page is still
 * made stale by the clocks, it is only not re-rendered ahead of its next visitor.
 */
export interface IndexedPage {
  /** The URL's key. */
  key: string;
  /** The key the entry lives at (the URL's key, or one of its Vary variants). */
  variantKey: string;
}

/**
 * Which pages carry which tags: this process's `TagIndex`, or the one every instance sharing a
 * Redis writes (stores/redis/page-index.ts). An index only says which pages to re-render
 * ahead of their next visitor: a page it forgets (bound, eviction, an outage) is still made
 * stale by the tag clocks.
 */
export interface PageIndex {
  /** Records `page` under each of `tags`, for `lifeMs` (the page's life in the store) when given. */
  add(page: IndexedPage, tags: readonly string[], lifeMs?: number): void | Promise<void>;
  /** The pages carrying any of `tags`, each once; `undefined` when the index cannot be read. */
  pagesWith(tags: readonly string[]): IndexedPage[] | Promise<IndexedPage[] | undefined>;
}

export class TagIndex implements PageIndex {
  private readonly pages = new Map<string, { page: IndexedPage; tags: readonly string[] }>();
  private readonly byTag = new Map<string, Set<string>>();

  constructor(private readonly limit = 20_000) {}

  has(variantKey: string): boolean {
    return this.pages.has(variantKey);
  }

  add(page: IndexedPage, tags: readonly string[]): void {
    this.remove(page.variantKey);
    this.pages.set(page.variantKey, { page, tags });
    for (const tag of tags) {
      let keys = this.byTag.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.byTag.set(tag, keys);
      }
      keys.add(page.variantKey);
    }
    if (this.pages.size > this.limit) this.remove(this.pages.keys().next().value as string);
  }

  remove(variantKey: string): void {
    const record = this.pages.get(variantKey);
    if (record === undefined) return;
    this.pages.delete(variantKey);
    for (const tag of record.tags) {
      const keys = this.byTag.get(tag);
      keys?.delete(variantKey);
      if (keys?.size === 0) this.byTag.delete(tag);
    }
  }

  /** The pages carrying any of `tags`, each once. */
  pagesWith(tags: readonly string[]): IndexedPage[] {
    const found = new Map<string, IndexedPage>();
    for (const tag of tags) {
      for (const variantKey of this.byTag.get(tag) ?? []) {
        const record = this.pages.get(variantKey);
        if (record !== undefined) found.set(variantKey, record.page);
      }
    }
    return [...found.values()];
  }
}
