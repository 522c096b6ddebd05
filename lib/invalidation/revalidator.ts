import type { Engine } from '../engine';
import { debug } from '../observability/report';
import type { Regenerator } from '../regeneration/regenerator';
import { TaggedRegeneration } from '../regeneration/tagged-regeneration';
import { encodePath, layoutTag, pageTag, userTag } from '../request/cache-key';
import { waitAtMost } from '../timeout';
import type { RevalidateMode } from '../types';
import type { RevalidationRequest } from './targets';

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
  ) {
    this.tagged = new TaggedRegeneration(engine, regenerator);
  }

  private readonly tagged: TaggedRegeneration;

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
      request.mode === 'regenerate' ? await this.tagged.run(clockTags) : {};
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
}
