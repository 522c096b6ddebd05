import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** What a downstream handler produced, as seen by the cache. */
export interface Captured {
  status: number;
  /** Response headers as they were when the status line went out. */
  headers: OutgoingHttpHeaders;
  body: Buffer;
  /** Why the copy cannot be stored, when it cannot: aborted, destroyed, too large. */
  incomplete?: 'aborted' | 'too-large';
}

export interface CaptureOptions {
  /** The copy is dropped (and the response not stored) past this many bytes. */
  maxBodySize: number;
  /**
   * When the client is gone before the app ended the response, how long the app still has to
   * end it (the copy is complete then, and can be stored for everyone) before the capture
   * settles as `aborted`. @default 30000
   */
  abandonAfterMs?: number;
  /**
   * Runs once, just before the status line and headers are sent, after the app set them.
   * `wholeBody` is given when the app ends the response in one call (`res.send`, `res.end(x)`),
   * so the whole body is known before any byte goes out.
   */
  beforeHeaders?: (wholeBody: Buffer | undefined) => void;
  /**
   * Every body chunk, in order, after `beforeHeaders` — also past `maxBodySize`. Returning
   * `false` (where the chunk is relayed to is full) makes the app's `write()` return `false`,
   * so an app that honours backpressure waits for a 'drain' the caller emits on `res`.
   */
  onBody?: (chunk: Buffer) => boolean | undefined;
  /** The app ended the response (after the last `onBody`). */
  onEnd?: () => void;
  /**
   * A hook above threw. The capture then settles as `aborted` (nothing of it is stored) and
   * the app's own `write`/`end` go on unharmed.
   */
  onHookError?: (error: unknown) => void;
}

type Callback = (error?: Error | null) => void;

/**
 * Captures a response while it streams to its client, in the way of `expressjs/compression`:
 * the original `writeHead`/`write`/`end` are kept and replaced by named functions on this one
 * response object (never on a shared prototype); every overload is accepted, headers passed to
 * `writeHead` are applied through `setHeader` first so they are seen (as `on-headers` does),
 * and the original `end` is always called.
 *
 * Resolves when the app ends the response: the copy is then complete, whether or not its own
 * client is still there to receive it (a visitor leaving must not cost everyone waiting for the
 * same page a render). It resolves as `aborted` when the app destroys the response, or when
 * the client is gone (even before the capture began) and the app has not ended it within
 * `abandonAfterMs`.
 */
export function captureResponse(res: ServerResponse, options: CaptureOptions): Promise<Captured> {
  const originalWriteHead = res.writeHead;
  const originalWrite = res.write;
  const originalEnd = res.end;
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  let ended = false;
  let status = 0;
  let headers: OutgoingHttpHeaders | undefined;
  /** Resolves the capture (set up below, once the wrappers that call it exist); once only. */
  let settle: (incomplete?: 'aborted') => void = () => {};
  /** A hook threw: whatever the app sends, this capture must not be stored. */
  let hookFailed = false;

  function guarded<T>(hook: () => T): T | undefined {
    if (hookFailed) return undefined;
    try {
      return hook();
    } catch (error) {
      hookFailed = true;
      options.onHookError?.(error);
      return undefined;
    }
  }

  /** Keeps a copy of `buffer` and hands it on; false when where it goes is full. */
  function collect(buffer: Buffer | undefined): boolean {
    if (buffer === undefined || buffer.length === 0) return true;
    const handedOn = options.onBody === undefined ? true : guarded(() => options.onBody?.(buffer));
    if (tooLarge) return handedOn !== false;
    size += buffer.length;
    if (size > options.maxBodySize) {
      tooLarge = true;
      chunks.length = 0;
    } else {
      chunks.push(buffer);
    }
    return handedOn !== false;
  }

  function headersGoingOut(wholeBody: Buffer | undefined): void {
    if (headers !== undefined) return;
    status = res.statusCode;
    headers = { ...res.getHeaders() };
    guarded(() => options.beforeHeaders?.(wholeBody));
  }

  res.writeHead = function captureWriteHead(
    this: ServerResponse,
    statusCode: number,
    reason?: unknown,
    extra?: unknown,
  ): ServerResponse {
    const reasonPhrase = typeof reason === 'string' ? reason : undefined;
    applyHeaders(res, typeof reason === 'string' ? extra : reason);
    res.statusCode = statusCode;
    headersGoingOut(undefined);
    return (originalWriteHead as (status: number, reason?: string) => ServerResponse).call(
      this,
      res.statusCode,
      reasonPhrase,
    );
  } as ServerResponse['writeHead'];

  res.write = function captureWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    let handedOn = true;
    if (!ended) {
      headersGoingOut(undefined); // the first write sends the head: the hook sees it first
      handedOn = collect(toBuffer(chunk, rest[0]));
    }
    const written = (originalWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    return written && handedOn;
  } as ServerResponse['write'];

  res.end = function captureEnd(this: ServerResponse, ...args: unknown[]) {
    if (ended) return (originalEnd as (...a: unknown[]) => ServerResponse).apply(this, args);
    ended = true;
    const [chunk, encoding, callback] = normalizeEndArgs(args);
    const last = toBuffer(chunk, encoding);
    try {
      if (headers === undefined) {
        const length = size + (last?.length ?? 0);
        const whole =
          tooLarge || length > options.maxBodySize
            ? undefined
            : last === undefined
              ? Buffer.concat(chunks)
              : chunks.length === 0
                ? last
                : Buffer.concat([...chunks, last]);
        headersGoingOut(whole);
      }
      collect(last);
      guarded(() => options.onEnd?.());
      return (originalEnd as (...a: unknown[]) => ServerResponse).call(
        this,
        chunk,
        encoding as BufferEncoding,
        callback,
      );
    } finally {
      settle(); // even if `end` threw: the app is done with this response either way
    }
  } as ServerResponse['end'];

  const captured = new Promise<Captured>((resolve) => {
    let abandon: NodeJS.Timeout | undefined;
    const onClose = () => {
      if (ended) return;
      abandon = setTimeout(() => settle('aborted'), options.abandonAfterMs ?? 30_000);
      abandon.unref();
    };
    settle = (incomplete) => {
      settle = () => {};
      clearTimeout(abandon);
      res.off('close', onClose);
      resolve({
        status: status || res.statusCode,
        headers: headers ?? { ...res.getHeaders() },
        body: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks),
        incomplete: incomplete ?? (hookFailed ? 'aborted' : tooLarge ? 'too-large' : undefined),
      });
    };
    // A response whose client left before we got here emits no more 'close'.
    if (res.destroyed || res.closed) onClose();
    else res.once('close', onClose);
  });

  const originalDestroy = res.destroy;
  res.destroy = function captureDestroy(this: ServerResponse, ...args: unknown[]) {
    if (!ended) settle('aborted'); // the app gave up on this response: nothing complete to keep
    return (originalDestroy as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['destroy'];

  return captured;
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string')
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return undefined;
}

function normalizeEndArgs(args: unknown[]): [unknown, unknown, Callback | undefined] {
  const [a, b, c] = args;
  if (typeof a === 'function') return [undefined, undefined, a as Callback];
  if (typeof b === 'function') return [a, undefined, b as Callback];
  return [a, b, c as Callback | undefined];
}

/** Headers given to `writeHead` as an object, a flat `[k, v, k, v]` array or `[[k, v]]`. */
function applyHeaders(res: ServerResponse, headers: unknown): void {
  if (headers === undefined || headers === null) return;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [name, value] of headers as [string, string][]) res.setHeader(name, value);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2) res.setHeader(headers[i], headers[i + 1]);
    }
    return;
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (value !== undefined) res.setHeader(name, value as string | string[] | number);
  }
}
