import createDebug from 'debug';
import type { ErrorContext, ResolvedOptions } from './options';

/**
 * `DEBUG=express-isr`: one line per decision, with its reason. Typed here rather than through
 * `debug`'s own types so that installed users need no `@types/debug`.
 */
export const debug: (format: string, ...args: unknown[]) => void = createDebug('express-isr');

/**
 * Problems the user must see, and clients never do. They go to `onError` when given, else to
 * the logger prefixed `[express-isr]`. A store outage is reported once when it starts and once
 * when it ends — not once per request.
 */
export class Reporter {
  constructor(
    private readonly options: Pick<ResolvedOptions, 'onError' | 'logger'>,
    private readonly onStoreOutage: (error: Error) => void = () => {},
  ) {}

  error(error: unknown, context: ErrorContext): void {
    const err = error instanceof Error ? error : new Error(String(error));
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
