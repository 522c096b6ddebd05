import { type IsrOptions, isr } from '../../lib';
import { errorRecorder } from './collect';
import { fakeClock } from './time';

/**
 * The cache most tests' sites start from: on a fake clock (time moves only when the test
 * says so), its `onError` reports and logger lines kept by `recorder` instead of printed.
 * `options` override any of it. The caller closes the cache (see cleanups.ts).
 */
export function recordedCache(options: IsrOptions = {}, clock = fakeClock()) {
  const recorder = errorRecorder();
  const cache = isr({
    now: clock.now,
    onError: recorder.onError,
    logger: recorder.logger,
    ...options,
  });
  return { clock, recorder, cache };
}
