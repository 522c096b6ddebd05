import type { ErrorContext } from '../../lib';

/** An `onError` that records what it was given, and a silent logger that records too. */
export function errorRecorder() {
  const errors: { error: Error; context: ErrorContext }[] = [];
  const warnings: unknown[][] = [];
  const logged: unknown[][] = [];
  return {
    errors,
    warnings,
    logged,
    onError: (error: Error, context: ErrorContext) => {
      errors.push({ error, context });
    },
    logger: {
      warn: (...args: unknown[]) => {
        warnings.push(args);
      },
      error: (...args: unknown[]) => {
        logged.push(args);
      },
    },
  };
}
