import type { Engine } from '../engine';
import { debug } from '../observability/report';
import type { RegenerateOutcome, Regenerator } from '../regeneration/regenerator';
import { encodePath, layoutTag, pageTag, userTag } from '../request/cache-key';
import { waitAtMost } from '../timeout';
import type { RevalidateMode } from '../types';
import type { IndexedPage } from './tag-index';

/** Options of `revalidatePath`. */
export interface RevalidatePathOptions {
  /** `page` (default): this path, every query variant. `layout`: this path and all below it. */
  type?: 'page' | 'layout';
  mode?: RevalidateMode;
}

/** Several targets at once: `cache.revalidate({ paths, tags, type, mode })`. */
export interface RevalidateRequest {
  paths?: string[];
  tags?: string[];
  /** How `paths` are matched (see `revalidatePath`). */
  type?: 'page' | 'layout';
  mode?: RevalidateMode;
  /** Who asks, for events and metrics. @default 'api' (the webhook says 'webhook') */
  source?: 'api' | 'webhook';
}

/** Options of `revalidateTag`. */
export interface RevalidateTagOptions {
  mode?: RevalidateMode;
}

/** One revalidation, as the webhook and the methods describe it. */
export interface RevalidationRequest {
  paths: string[];
  tags: string[];
  type: 'page' | 'layout';
  mode: RevalidateMode;
  /** Who asked, for events and metrics. */
  source: 'api' | 'webhook' | 'unsafe-method';
}

export const MODES: readonly RevalidateMode[] = ['stale', 'expire', 'regenerate'];
export const TYPES = ['page', 'layout'] as const;
/** Longest path or tag accepted: longer ones are not real URLs or tags, but abuse. */
export const MAX_TARGET_LENGTH = 2048;
/** Pages re-rendered at once by `mode: 'regenerate'`, so a popular tag cannot flood the app. */
const REGENERATE_CONCURRENCY = 4;

/**
 * Why `path` cannot be revalidated, or `undefined`. Shared by the methods (which throw a
 * TypeError with it) and the webhook (which answers 400 with it).
 */
export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return `path must be a string, got ${typeof path}`;
  if (path === '') return 'path must not be empty';
  if (!path.startsWith('/'))
    return `path must start with "/", got ${JSON.stringify(path.slice(0, 100))}`;
  if (path.length > MAX_TARGET_LENGTH)
    return `path must be at most ${MAX_TARGET_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'path must not contain control characters';
  if (/[?#]/.test(path))
    return 'path must not contain "?" or "#": a path covers every query variant';
  return undefined;
}

export function tagProblem(tag: unknown): string | undefined {
  if (typeof tag !== 'string') return `tag must be a string, got ${typeof tag}`;
  if (tag.trim() === '') return 'tag must not be empty';
  if (tag.length > MAX_TARGET_LENGTH) return `tag must be at most ${MAX_TARGET_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we reject
  if (/[\u0000-\u001f\u007f]/.test(tag)) return 'tag must not contain control characters';
  return undefined;
}

/**
 * A short, safe description of a value a client sent: never `JSON.stringify` of the value
 * itself, which a deeply nested body would overflow the stack with.
 */
export function preview(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : String(value);
}

export function modeProblem(mode: unknown): string | undefined {
  return MODES.includes(mode as RevalidateMode)
    ? undefined
    : `mode must be one of ${MODES.join(', ')}, got ${preview(mode)}`;
}

export function typeProblem(type: unknown): string | undefined {
  return TYPES.includes(type as 'page')
    ? undefined
    : `type must be one of ${TYPES.join(', ')}, got ${preview(type)}`;
}

/** What a call to `onRevalidate` came to when the revalidation answered (see `Revalidator`). */
export type PurgeState = 'ok' | 'failed' | 'pending';

/**
 * What a revalidation did, for its caller and the webhook's answer. The counts come with
 * `mode: 'regenerate'` only (the other modes re-render nothing); `purge` only with an
 * `onRevalidate` hook.
 */
export interface RevalidationResult {
  /** Pages re-rendered and stored (by this instance, or by another holding the page's lease). */
  regenerated?: number;
  /** Pages whose re-render failed: the old page stays, served `STALE`, and is retried later. */
  failed?: number;
  /**
   * Pages not done within `regenerateTimeout` (still rendering, queued, or left to the
   * instance holding their lease): served `STALE` until they are, then `HIT`.
   */
  pending?: number;
  /** `onRevalidate` (the CDN purge): it resolved, it threw (see `onError`), or it is still running. */
  purge?: PurgeState;
}

/**
 * How long a revalidation waits for `onRevalidate` before answering (`regenerateTimeout` when
 * shorter): long enough for a purge API's answer, short enough for a CMS's webhook timeout.
 * A purge still retrying goes on in the background (its failure still reaches `onError`).
 */
const PURGE_WAIT_MS = 5000;
/** How often a page whose lease another instance holds is checked again. */
const LEASE_POLL_MS = 25;

/**
 * On-demand revalidation. `stale` and `expire` are one write per tag clock — no scan of the
 * cache, whatever its size — and every instance sharing the store sees it on its next read.
 * `regenerate` is `stale` plus a re-render of the matching pages — those this process knows
 * of (`TagIndex`) and, with Redis, those any instance stored (`RedisPageIndex`) — a few at a
 * time, once across the fleet (the page's lease), waited for (up to `regenerateTimeout`) so
 * that the next visitor gets the new page.
 */
export class Revalidator {
  constructor(
    private readonly engine: Engine,
    private readonly regenerator: Regenerator,
    /** Told once an invalidation is recorded (pages rendered just before must not be served). */
    private readonly onInvalidated: () => void = () => {},
  ) {}

  /**
   * Resolves once the invalidation is recorded in the store (so every instance sees it) and,
   * with `mode: 'regenerate'`, once the matching pages are re-rendered — or `regenerateTimeout`
   * has passed, after which the rest go on in the background. `onRevalidate` (a CDN purge)
   * is called after that, so a CDN refetching at once gets the new pages, and waited for
   * briefly (`PURGE_WAIT_MS`). The result says how many pages were re-rendered, failed or are
   * still pending, and how the purge went.
   */
  async revalidate(request: RevalidationRequest): Promise<RevalidationResult> {
    const { engine } = this;
    const clockTags = [
      ...request.paths.map((path) => {
        // Normalised as a visitor's URL is (RFC 3986 §6.2.2), after encoding what a browser
        // would: `/blog/café`, `/blog/caf%C3%A9` and `/blog/caf%c3%a9` are one page.
        const canonical = engine.canonical(encodePath(path)).path;
        return request.type === 'layout' ? layoutTag(canonical) : pageTag(canonical);
      }),
      ...request.tags.map(userTag),
    ];
    if (clockTags.length === 0) return {};
    await engine.bump(clockTags, request.mode === 'expire' ? 'expire' : 'stale');
    this.onInvalidated();
    debug('revalidate: %s (%s, from %s)', clockTags.join(' '), request.mode, request.source);
    const { paths, tags, mode, source } = request;
    engine.observer.revalidate({ paths, tags, mode, source });
    const result: RevalidationResult =
      request.mode === 'regenerate' ? await this.regenerateAll(clockTags) : {};
    const purge = await this.forward({ paths, tags, mode, type: request.type });
    if (purge !== undefined) result.purge = purge;
    return result;
  }

  /**
   * The `onRevalidate` hook (e.g. a CDN purge), waited for `PURGE_WAIT_MS` at most (it goes on
   * in the background after that, `close()` waiting for it as for a regeneration); a failure
   * goes to `onError`. `undefined` without a hook.
   */
  private async forward(event: {
    paths: string[];
    tags: string[];
    mode: RevalidateMode;
    type: 'page' | 'layout';
  }): Promise<PurgeState | undefined> {
    const hook = this.engine.options.onRevalidate;
    if (hook === undefined) return undefined;
    let state: PurgeState = 'pending';
    const work = (async () => {
      await hook(event);
    })().then(
      () => {
        state = 'ok';
      },
      (error) => {
        state = 'failed';
        this.engine.reporter.error(error, { phase: 'on-revalidate' });
      },
    );
    this.regenerator.track(work);
    await waitAtMost(work, Math.min(PURGE_WAIT_MS, this.engine.options.regenerateTimeout));
    return state;
  }

  /**
   * Re-renders the pages carrying any of `clockTags`, `REGENERATE_CONCURRENCY` at a time;
   * resolves with the counts once all are done or `regenerateTimeout` has passed (the rest go
   * on in the background). A page found gone counts in none of them.
   */
  private async regenerateAll(
    clockTags: string[],
  ): Promise<Required<Pick<RevalidationResult, 'regenerated' | 'failed' | 'pending'>>> {
    const { engine } = this;
    const deadline = Date.now() + engine.options.regenerateTimeout;
    const pages = await this.pagesWith(clockTags);
    debug('revalidate: re-rendering %d page(s)', pages.length);
    const done = { regenerated: 0, failed: 0, skipped: 0, deferred: 0 };
    const queue = [...pages];
    const worker = async () => {
      for (let page = queue.shift(); page !== undefined; page = queue.shift()) {
        done[await this.settle(page, deadline)] += 1;
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < REGENERATE_CONCURRENCY; i += 1) {
      const work = worker();
      this.regenerator.track(work);
      workers.push(work);
    }
    // A failed lookup or render is reported by `track`; the caller only waits.
    await waitAtMost(Promise.allSettled(workers), Math.max(0, deadline - Date.now()));
    // Counted now: what finishes later is still `pending` in this answer.
    const { regenerated, failed, skipped } = done;
    return { regenerated, failed, pending: pages.length - regenerated - failed - skipped };
  }

  /**
   * The pages to re-render: those this process stored or served, and — with Redis — those
   * any instance stored (an index that cannot be read leaves the first only).
   */
  private async pagesWith(clockTags: string[]): Promise<IndexedPage[]> {
    const found = new Map<string, IndexedPage>();
    for (const page of this.engine.index.pagesWith(clockTags)) found.set(page.variantKey, page);
    const shared = await this.engine.sharedIndex?.pagesWith(clockTags);
    for (const page of shared ?? []) found.set(page.variantKey, page);
    return [...found.values()];
  }

  /**
   * Re-renders one page, once across the instances sharing the store. When another instance
   * holds the page's lease, it is waited for (until `deadline`). Either way, what is stored
   * then must be fresh: a render another instance started before this invalidation stored a
   * page that is already stale, and it is re-rendered here once more. Not fresh by then, the
   * page is `deferred` (pending): served `STALE`, and regenerated on a later request.
   */
  private async settle(page: IndexedPage, deadline: number): Promise<RegenerateOutcome> {
    const { engine } = this;
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.regenerator.regenerate(page.key, page.variantKey);
      if (outcome === 'failed' || outcome === 'skipped') return outcome;
      if (outcome === 'deferred' && !(await this.leaseReleased(page.variantKey, deadline)))
        return 'deferred';
      const entry = await engine.lookupEntry(page.variantKey);
      if (entry === undefined) return 'skipped';
      if ((await engine.freshness(entry)).state === 'fresh') return 'regenerated';
      if (attempt === 2) return 'deferred';
    }
  }

  /** Whether nobody holds `variantKey`'s lease any more, checked until `deadline`. */
  private async leaseReleased(variantKey: string, deadline: number): Promise<boolean> {
    while (await this.engine.lock.held(variantKey)) {
      if (Date.now() + LEASE_POLL_MS > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS).unref());
    }
    return true;
  }
}
