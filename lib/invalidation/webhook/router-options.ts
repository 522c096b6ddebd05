import { CACHE_WARN, warnOnce } from '../../observability/warnings';
import { fail, invalid } from '../../validate';
import type { Revalidatable, RevalidateRouterOptions } from './router';

const DEFAULT_MAX_BODY = 64 * 1024;
const DEFAULT_MAX_TARGETS = 100;
const DEFAULT_BODY_TIMEOUT = 10_000;
const MIN_SECRET_LENGTH = 16;

/** Checks `revalidateRouter`'s arguments and fills in the defaults; a weak secret is warned about. */
export function checkRouterOptions(cache: Revalidatable, options: RevalidateRouterOptions) {
  if (typeof cache?.revalidatePath !== 'function' || typeof cache?.revalidateTag !== 'function') {
    invalid('revalidateRouter(cache, options): cache must be the middleware returned by isr()');
  }
  if (typeof options !== 'object' || options === null) {
    invalid('revalidateRouter(cache, options): options must be an object with a secret');
  }
  const {
    secret,
    maxBodySize = DEFAULT_MAX_BODY,
    maxTargets = DEFAULT_MAX_TARGETS,
    bodyTimeout = DEFAULT_BODY_TIMEOUT,
    signature,
    verify,
  } = options;
  if (typeof secret !== 'string' || secret.trim() === '') {
    fail('revalidateRouter: secret', 'a non-empty string (e.g. process.env.ISR_SECRET)', secret);
  }
  if (!Number.isInteger(maxBodySize) || maxBodySize <= 0) {
    fail('revalidateRouter: maxBodySize', 'a positive integer (bytes)', maxBodySize);
  }
  if (!Number.isInteger(maxTargets) || maxTargets <= 0) {
    fail('revalidateRouter: maxTargets', 'a positive integer', maxTargets);
  }
  if (!Number.isInteger(bodyTimeout) || bodyTimeout <= 0) {
    fail('revalidateRouter: bodyTimeout', 'a positive integer (milliseconds)', bodyTimeout);
  }
  if (
    signature !== undefined &&
    (typeof signature !== 'object' || typeof signature.header !== 'string')
  ) {
    fail('revalidateRouter: signature', 'an object with a header name', signature);
  }
  if (verify !== undefined && typeof verify !== 'function') {
    fail('revalidateRouter: verify', 'a function', verify);
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    const message = `the webhook secret has ${secret.length} characters; use ${MIN_SECRET_LENGTH} or more random ones (e.g. \`openssl rand -hex 32\`)`;
    // Through the cache when it is `isr()`'s (its `silence` and `logger` apply), unless the
    // router was given a logger of its own; `EXPRESS_ISR_SILENCE` applies either way.
    const cacheWarn = (cache as unknown as Record<symbol, unknown>)[CACHE_WARN];
    if (options.logger === undefined && typeof cacheWarn === 'function') {
      cacheWarn('ISR_SHORT_SECRET', message);
    } else {
      warnOnce(options.logger ?? console, 'ISR_SHORT_SECRET', message);
    }
  }
  return { secret, maxBodySize, maxTargets, bodyTimeout, signature, verify };
}
