import type { RevalidateMode } from '../types';

/**
 * What a revalidation names — paths, tags, their type and mode — and the checks of each, shared
 * by the methods (which throw a TypeError with the problem) and the webhook (which answers 400
 * with it).
 */

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
const TYPES = ['page', 'layout'] as const;
/** Longest path or tag accepted: longer ones are not real URLs or tags, but abuse. */
export const MAX_TARGET_LENGTH = 2048;
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
