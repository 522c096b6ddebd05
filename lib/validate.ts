/**
 * The checks behind every option error: each names the option, what it must be and what it
 * got, in one wording (`[express-isr] <name> must be <expected>, got <value>`).
 */

/** Checks a number of seconds or `false` (revalidate, maxStale, staleIfError), here or in `res.isr()`. */
export function checkSeconds(value: unknown, where: string): asserts value is number | false {
  if (value !== false && !(isNumber(value) && value >= 0)) {
    fail(where, 'a number of seconds >= 0 or false', value);
  }
}

export function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

export function positive(name: string, value: unknown): void {
  if (!isNumber(value) || value <= 0) fail(name, 'a positive number', value);
}

export function stringList(name: string, value: unknown): asserts value is string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    fail(name, 'an array of non-empty strings', value);
  }
}

export function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') fail(name, 'a function', value);
}

/**
 * Throws the option error: `name` is the option, prefixed by the function that takes it when
 * that is not `isr()` (`cloudflarePurge: zoneId`, `entries: limit`).
 */
export function fail(name: string, expected: string, got: unknown): never {
  throw new TypeError(`[express-isr] ${name} must be ${expected}, got ${describe(got)}`);
}

/** Throws the error of an argument a check has already worded (`revalidateTag: tag must be…`). */
export function invalid(problem: string): never {
  throw new TypeError(`[express-isr] ${problem}`);
}

/** Throws the error of an option whose optional package is not installed. */
export function missingPackage(name: string, needs: string, install: string): never {
  throw new TypeError(`[express-isr] ${name} needs ${needs}: npm install ${install}`);
}

/** Throws the error of a required option that is missing or empty. */
export function required(name: string, expected: string, got: unknown): never {
  throw new TypeError(`[express-isr] ${name} is required (${expected}), got ${describe(got)}`);
}

export function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value); // NaN, Infinity
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
