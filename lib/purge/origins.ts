/** A site origin a purger names pages by. */
export interface Origin {
  /** `https://www.example.com` */
  origin: string;
  /** `www.example.com` (with the port when it is not the scheme's default). */
  host: string;
}

export function checkOrigins(value: unknown, where: string): Origin[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw originError(where);
  return value.map((item) => {
    let url: URL;
    try {
      url = new URL(item as string);
    } catch {
      throw originError(where);
    }
    if (!/^https?:$/.test(url.protocol) || (url.pathname !== '/' && url.pathname !== ''))
      throw originError(where);
    return { origin: url.origin, host: url.host };
  });
}

export function checkString(value: unknown, where: string, name: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new TypeError(`[express-isr] ${where}: ${name} is required (a non-empty string)`);
  return value;
}

function originError(where: string): TypeError {
  return new TypeError(
    `[express-isr] ${where}: origins must be a list of origins like "https://www.example.com"`,
  );
}

export function checkBatch(value: unknown, where: string, max: number): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new TypeError(
      `[express-isr] ${where}: batchSize must be a whole number from 1 to ${max}`,
    );
  }
  return value as number;
}
