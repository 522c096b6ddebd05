import type { Engine } from '../engine';
import { debug } from '../observability/report';
import type { Regenerator } from '../regeneration/regenerator';
import { encodePath, layoutTag, pageTag, userTag } from '../request/cache-key';
import { waitAtMost } from '../timeout';
import type { RevalidateMode } from '../types';

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

/**
 * On-demand revalidation. `stale` and `expire` are one write per tag clock — no scan of the
 * cache, whatever its size — and every instance sharing the store sees it on its next read.
 * `regenerate` is `stale` plus a re-render of the matching pages this process knows of (see
 * `TagIndex`), a few at a time, waited for (up to `regenerateTimeout`) so that the next
 * visitor gets the new page.
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
   * is told after that, so a CDN refetching at once gets the new pages.
   */
  async revalidate(request: RevalidationRequest): Promise<void> {
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
    if (clockTags.length === 0) return;
    await engine.bump(clockTags, request.mode === 'expire' ? 'expire' : 'stale');
    this.onInvalidated();
    debug('revalidate: %s (%s, from %s)', clockTags.join(' '), request.mode, request.source);
    const { paths, tags, mode, source } = request;
    engine.observer.revalidate({ paths, tags, mode, source });
    if (request.mode === 'regenerate') {
      await waitAtMost(this.regenerateAll(clockTags), engine.options.regenerateTimeout);
    }
    this.forward({ paths, tags, mode, type: request.type });
  }

  /** The `onRevalidate` hook (e.g. a CDN purge): in the background, errors reported. */
  private forward(event: {
    paths: string[];
    tags: string[];
    mode: RevalidateMode;
    type: 'page' | 'layout';
  }): void {
    const hook = this.engine.options.onRevalidate;
    if (hook === undefined) return;
    this.regenerator.track(
      (async () => {
        await hook(event);
      })().catch((error) => this.engine.reporter.error(error, { phase: 'on-revalidate' })),
    );
  }

  /** Re-renders the indexed pages carrying any of `clockTags`; settles when all are done. */
  private regenerateAll(clockTags: string[]): Promise<unknown> {
    const queue = this.engine.index.pagesWith(clockTags);
    debug('revalidate: re-rendering %d page(s)', queue.length);
    const worker = async () => {
      for (let page = queue.shift(); page !== undefined; page = queue.shift()) {
        await this.regenerator.regenerate(page.key, page.variantKey);
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < REGENERATE_CONCURRENCY; i += 1) {
      const work = worker();
      this.regenerator.track(work);
      workers.push(work);
    }
    // A failed lookup or render is reported by `track`; the caller only waits.
    return Promise.allSettled(workers);
  }
}
