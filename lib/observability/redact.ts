/**
 * URLs reach debug lines, events and `onError` contexts; a URL can carry a credential (the
 * webhook's `?secret=`, a signed link's `?token=`). What leaves the cache for a log is
 * redacted: the values of query parameters named like a credential, and any secret the
 * webhook router was given, wherever it appears, raw or percent-encoded.
 */

/** What a redacted value is replaced with. */
export const REDACTED = '***';

/**
 * Words that make a query parameter's name sensitive, compared case-insensitively, word by
 * word (`secret`, `api_key`, `apiKey`, `X-Signature`, `access_token`), after percent-decoding.
 */
const SENSITIVE_WORDS = new Set([
  'secret',
  'token',
  'key',
  'apikey',
  'password',
  'passwd',
  'signature',
  'sig',
  'auth',
  'authorization',
  'credential',
  'credentials',
]);

/** `name=value` after `?` or `&`; a value ends where the parameter, URL or Vary suffix does. */
const PARAM = /([?&])([^=&#?\s\0]+)=([^&#\s\0]*)/g;

/**
 * Where the router registers its secrets with the cache it is given (`isr()` answers to it).
 * Internal: a Symbol, so it is no part of the middleware's public surface.
 */
export const PROTECT_SECRET = Symbol('express-isr.protect-secret');

/** Redactors holding secrets, for the debug lines (one namespace for every cache). */
const live = new Set<Redactor>();

/** One cache's redaction: the sensitive parameters, and the secrets registered with it. */
export class Redactor {
  private readonly secrets = new Map<string, RegExp>();

  /** Redacts `secret` from now on, raw or percent-encoded in any hex case. */
  protect(secret: string): void {
    if (typeof secret !== 'string' || secret === '' || this.secrets.has(secret)) return;
    this.secrets.set(secret, secretPattern(secret));
    live.add(this);
  }

  /** Stops taking part in the debug lines' redaction (the cache is closed). */
  release(): void {
    live.delete(this);
  }

  /** Whether `text` carries one of the registered secrets, raw or percent-encoded. */
  carriesSecret(text: string): boolean {
    for (const pattern of this.secrets.values()) {
      pattern.lastIndex = 0;
      if (pattern.test(text)) return true;
    }
    return false;
  }

  redact(text: string): string {
    let out = redactParams(text);
    for (const pattern of this.secrets.values()) out = out.replace(pattern, REDACTED);
    return out;
  }
}

/** For the debug lines: the sensitive parameters, and every secret any live cache was given. */
export function redactForDebug(text: string): string {
  let out = redactParams(text);
  for (const redactor of live) out = redactor.redact(out);
  return out;
}

function redactParams(text: string): string {
  if (!text.includes('=')) return text;
  return text.replace(PARAM, (match, mark: string, name: string) =>
    sensitive(name) ? `${mark}${name}=${REDACTED}` : match,
  );
}

function sensitive(rawName: string): boolean {
  let name = rawName.replace(/\+/g, ' ');
  try {
    name = decodeURIComponent(name);
  } catch {
    // not valid percent-encoding: judged as written
  }
  return name
    .split(/(?<=[a-z0-9])(?=[A-Z])|[^A-Za-z0-9]+/)
    .some((word) => SENSITIVE_WORDS.has(word.toLowerCase()));
}

/** Matches `secret` with each character raw, percent-encoded (UTF-8, either hex case) or `+` for a space. */
function secretPattern(secret: string): RegExp {
  const parts = [...secret].map((char) => {
    const encoded = [...Buffer.from(char, 'utf8')]
      .map((byte) => `%${[...byte.toString(16).padStart(2, '0')].map(eitherCase).join('')}`)
      .join('');
    const options = [char.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'), encoded];
    if (char === ' ') options.push('\\+');
    return `(?:${options.join('|')})`;
  });
  return new RegExp(parts.join(''), 'g');
}

function eitherCase(digit: string): string {
  return /[a-f]/.test(digit) ? `[${digit}${digit.toUpperCase()}]` : digit;
}
