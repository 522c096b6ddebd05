import type { IncomingMessage } from 'node:http';

/**
 * The request headers a render that will be stored is allowed to see. A stored page is
 * served to everyone, so nothing one client sends may shape it: the render gets an
 * allowlist, not the client's headers minus a denylist (a denylist would miss the
 * `X-User-Id` an auth proxy adds). It sees:
 * - `Host`: the `host` option, else the address the server listens on — never the client's
 *   (Host is not part of the key, so a forged Host must not reach absolute links);
 * - the `forwardHeaders` option (default `Accept`, `Accept-Language`), and the headers the
 *   page's `Vary` names (they are part of its variant key);
 * - `Accept-Encoding: identity`, so a `compression()` mounted after the cache hands it
 *   plain bytes (it makes its own br/gzip variants once).
 * No Cookie, no Authorization, no X-Forwarded-*, no conditionals, no Range.
 */
export function sharedRequestHeaders(
  req: IncomingMessage,
  forwardHeaders: readonly string[],
  varyHeaders: readonly string[],
  host: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { host: host ?? localHost(req) };
  for (const list of [forwardHeaders, varyHeaders]) {
    for (const name of list) {
      const value = req.headers[name];
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  headers['accept-encoding'] = 'identity';
  return headers;
}

function localHost(req: IncomingMessage): string {
  const { localAddress, localPort } = req.socket ?? {};
  if (localAddress === undefined) return 'localhost';
  const address = localAddress.startsWith('::ffff:') ? localAddress.slice(7) : localAddress;
  const bracketed = address.includes(':') ? `[${address}]` : address;
  return localPort === undefined ? bracketed : `${bracketed}:${localPort}`;
}
