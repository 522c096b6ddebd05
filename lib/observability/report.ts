import createDebug from 'debug';
import type { ErrorContext, ResolvedOptions } from '../options';
import { redactForDebug } from './redact';

const namespace = createDebug('express-isr');

/**
 * `DEBUG=express-isr`: one line per decision, with its reason. Typed here rather than through
 * `debug`'s own types so that installed users need no `@types/debug`. The URLs in it are
 * redacted (see redact.ts): a debug log is shared more widely than the secrets in a URL.
 */
export function debug(format: string, ...args: unknown[]): void {
  if (!namespace.enabled) return;
  namespace(format, ...args.map((arg) => (typeof arg === 'string' ? redactForDebug(arg) : arg)));
}

/**
 * Problems the user must see, and clients never do. They go to `onError` when given, else to
 * the logger prefixed `[express-isr]`. A store outage is reported once when it starts and once
 * when it ends — not once per request.
 */
export class Reporter {
  constructor(
    private readonly options: Pick<ResolvedOptions, 'onError' | 'logger'>,
    private readonly onStoreOutage: (error: Error) => void = () => {},
    /** Applied to the URL in a context (its key) before `onError` or the logger sees it. */
    private readonly redact: (text: string) => string = (text) => text,
  ) {}

  error(error: unknown, given: ErrorContext): void {
    const err = error instanceof Error ? error : new Error(String(error));
    const context = given.key === undefined ? given : { ...given, key: this.redact(given.key) };
    debug('%s error%s: %s', context.phase, context.key ? ` for ${context.key}` : '', err.message);
    if (this.options.onError) {
      try {
        this.options.onError(err, context);
      } catch (hookError) {
        this.options.logger.error('[express-isr] onError threw:', hookError);
      }
      return;
    }
    const where = context.key ? ` for ${context.key}` : '';
    const retry =
      context.retryAt !== undefined
        ? ` (attempt ${context.attempt}; next retry at ${new Date(context.retryAt).toISOString()})`
        : '';
    this.options.logger.error(
      `[express-isr] ${context.phase} failed${where}${retry}: ${err.message}`,
    );
  }

  storeOutage(error: Error): void {
    this.onStoreOutage(error);
    this.error(error, { phase: 'store' });
  }

  storeRecovered(): void {
    debug('store: recovered');
    this.options.logger.warn('[express-isr] store is answering again; caching resumed');
  }
}
