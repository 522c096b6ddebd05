import type { IncomingMessage } from 'node:http';
import type { RevalidateMode } from '../../types';
import { modeProblem, pathProblem, preview, tagProblem, typeProblem } from '../targets';

/**
 * Reading a webhook call: the body (whether or not a body parser already ran), and the
 * targets from the body and the query string, every one checked before anything happens.
 * Whatever is wrong becomes an `HttpError` with the status and a message that names it.
 */

/** A 4xx answer, with the message the client gets as `{ error }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The body as raw bytes and as an object, whether or not a body parser already ran. A body
 * that has not fully arrived `timeoutMs` after we started reading it is a 408 (RFC 9110
 * §15.5.9): a client trickling bytes must not hold the webhook open.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  timeoutMs: number,
): Promise<{ raw: Buffer; body: Record<string, unknown> }> {
  const parsed = (req as { body?: unknown }).body;
  const declared = Number(req.headers['content-length']);
  if (req.readableEnded && parsed !== undefined) {
    // express.json() (or another parser) mounted before us consumed the stream already: its
    // own limit applied, and ours still does to the size the client declared. The raw bytes
    // (for `signature` and `verify`) are only there if the parser kept them as `req.rawBody`.
    if (declared > limit) throw new HttpError(413, `body must be at most ${limit} bytes`);
    const raw = (req as { rawBody?: unknown }).rawBody;
    return { raw: Buffer.isBuffer(raw) ? raw : Buffer.alloc(0), body: asObject(parsed) };
  }
  if (declared > limit) throw new HttpError(413, `body must be at most ${limit} bytes`);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      req.removeAllListeners('data');
      req.resume(); // whatever still comes is dropped; the connection is closed after the answer
      reject(new HttpError(408, `the body did not arrive within ${timeoutMs} ms; send it at once`));
    }, timeoutMs);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        clearTimeout(timer);
        req.removeAllListeners('data');
        req.resume(); // drain what is left without keeping it
        reject(new HttpError(413, `body must be at most ${limit} bytes`));
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    req.on('error', () => {
      clearTimeout(timer);
      reject(new HttpError(400, 'the body could not be read'));
    });
  });
  if (raw.length === 0) return { raw, body: {} };
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new HttpError(415, 'the body must be JSON (Content-Type: application/json)');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new HttpError(400, 'the body is not valid UTF-8');
  }
  try {
    return { raw, body: asObject(JSON.parse(text)) };
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, `the body is not valid JSON: ${(error as Error).message}`);
  }
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export interface Input {
  paths: string[];
  tags: string[];
  type: 'page' | 'layout';
  mode: RevalidateMode;
}

/** Targets from the query string and the JSON body, every one checked before anything happens. */
export function collectInput(
  query: URLSearchParams,
  body: Record<string, unknown>,
  maxTargets: number,
): Input {
  const paths = [
    ...query.getAll('path'),
    ...query.getAll('paths'),
    ...oneOrList(body, 'path', false),
    ...oneOrList(body, 'paths', true),
  ];
  const tags = [
    ...query.getAll('tag'),
    ...query.getAll('tags'),
    ...oneOrList(body, 'tag', false),
    ...oneOrList(body, 'tags', true),
  ];
  if (paths.length + tags.length === 0) {
    throw new HttpError(400, 'nothing to revalidate: give a path, paths, tag or tags');
  }
  if (paths.length + tags.length > maxTargets) {
    throw new HttpError(400, `too many targets: at most ${maxTargets} paths and tags in one call`);
  }
  for (const path of paths) {
    const problem = pathProblem(path);
    if (problem !== undefined) throw new HttpError(400, problem);
  }
  for (const tag of tags) {
    const problem = tagProblem(tag);
    if (problem !== undefined) throw new HttpError(400, problem);
  }
  const type = single(query, body, 'type', typeProblem) ?? 'page';
  const mode = single(query, body, 'mode', modeProblem) ?? 'stale';
  const problem = typeProblem(type) ?? modeProblem(mode);
  if (problem !== undefined) throw new HttpError(400, problem);
  return {
    paths: unique(paths),
    tags: unique(tags),
    type: type as Input['type'],
    mode: mode as RevalidateMode,
  };
}

/** Reading the input can only fail with a 4xx: whatever else goes wrong there is a bad request. */
export function safely<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, 'the request could not be read');
  }
}

function oneOrList(body: Record<string, unknown>, field: string, list: boolean): string[] {
  if (!Object.hasOwn(body, field) || body[field] === undefined) return [];
  const value = body[field];
  if (!list) {
    if (typeof value !== 'string')
      throw new HttpError(400, `${field} must be a string, got ${preview(value)}`);
    return [value];
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new HttpError(400, `${field} must be an array of strings, got ${preview(value)}`);
  }
  return value as string[];
}

/**
 * `type` or `mode`, from the query or the body. Only an absent field means the default: a
 * JSON `null` is a value of the wrong type, refused like any other, never read as "default".
 */
function single(
  query: URLSearchParams,
  body: Record<string, unknown>,
  field: string,
  problemOf: (value: unknown) => string | undefined,
): unknown {
  const fromQuery = query.getAll(field);
  if (fromQuery.length > 1) throw new HttpError(400, `${field} must be given once`);
  const fromBody = Object.hasOwn(body, field) ? body[field] : undefined;
  if (fromBody === null) throw new HttpError(400, problemOf(null) ?? `${field} must not be null`);
  if (fromQuery.length === 1 && fromBody !== undefined && fromBody !== fromQuery[0]) {
    throw new HttpError(400, `${field} differs between the query string and the body`);
  }
  return fromQuery[0] ?? fromBody;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
