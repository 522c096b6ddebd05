/**
 * Secrets never reach logs, events or error contexts. The webhook's `?secret=` (and any secret
 * the router was given, wherever in a URL and however encoded) and the values of query
 * parameters named like credentials are `***` in `DEBUG=express-isr` lines, in event
 * payloads and in `onError` contexts.
 */
import express from 'express';
import { isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { recordDebugLines } from '../helpers/debug-lines';
import { listen } from '../helpers/http';
import { fakeClock } from '../helpers/time';

/** Has "+", "/" and "=", so its percent-encoded form differs from it. */
const SECRET = 'Redact+Me/Webhook=Secret-0123456789';
const ENDPOINT = '/api/revalidate';

const debugLines = recordDebugLines();
const cleanups = cleanupsAfterEach();

async function site() {
  const recorder = errorRecorder();
  const cache = isr({ now: fakeClock().now, onError: recorder.onError, logger: recorder.logger });
  const app = express();
  const failing = { now: false };
  app.use(cache);
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET }));
  app.get('/p', (_req, res) => {
    if (failing.now) throw new Error('the render failed');
    res.send('<p>page</p>');
  });
  const server = await listen(app);
  cleanups.push(() => cache.close());
  cleanups.push(() => server.close());
  const events: { name: string; payload: unknown }[] = [];
  for (const name of [
    'hit',
    'miss',
    'stale',
    'bypass',
    'regenerate:start',
    'regenerate:error',
  ] as const) {
    cache.on(name, (payload) => events.push({ name, payload }));
  }
  return { cache, server, recorder, events, failing };
}

/** Everything the outside world was told, as one text to search. */
function told(s: Awaited<ReturnType<typeof site>>): string {
  return JSON.stringify({
    debugLines,
    events: s.events,
    errors: s.recorder.errors.map(({ error, context }) => ({ message: error.message, context })),
    logged: s.recorder.logged.map((args) => args.map(String)),
    warnings: s.recorder.warnings.map((args) => args.map(String)),
    stats: s.cache.stats(),
  });
}

describe('secrets in URLs are redacted', () => {
  test('the webhook secret in ?secret= is *** in the bypass debug line and the bypass event', async () => {
    const s = await site();
    const answer = await s.server.send({
      method: 'POST',
      path: `${ENDPOINT}?secret=${encodeURIComponent(SECRET)}&path=/p`,
    });
    expect(answer.status).toBe(200);
    expect(
      debugLines.some((line) => line.includes(`bypass: POST ${ENDPOINT}?secret=***&path=/p`)),
    ).toBe(true);
    expect(s.events).toContainEqual({
      name: 'bypass',
      payload: { url: `${ENDPOINT}?secret=***&path=/p`, reason: expect.any(String) },
    });
    const text = told(s);
    expect(text).not.toContain(encodeURIComponent(SECRET));
    expect(text).not.toContain(SECRET);
  });

  test('the router’s secret is redacted under any parameter name or in the path, raw or encoded in either hex case', async () => {
    const s = await site();
    const encoded = encodeURIComponent(SECRET);
    const lowerHex = encoded.replace(/%[0-9A-F]{2}/g, (pct) => pct.toLowerCase());
    const spellings = [
      `${ENDPOINT}?path=/p&note=${encoded}`,
      `${ENDPOINT}?path=/p&note=${lowerHex}`,
      `${ENDPOINT}/${encoded}`,
    ];
    for (const path of spellings) {
      const answer = await s.server.send({ method: 'POST', path });
      expect(answer.status).not.toBe(0);
    }
    const bypassed = s.events.filter((event) => event.name === 'bypass');
    expect(bypassed).toHaveLength(spellings.length);
    for (const event of bypassed) expect(JSON.stringify(event)).toContain('***');
    const text = told(s);
    expect(text).not.toContain(encoded);
    expect(text).not.toContain(lowerHex);
    expect(text).not.toContain('Me/Webhook');
  });

  test('credential-named parameters of a cached page are *** in debug lines, events and onError', async () => {
    const s = await site();
    const query =
      '?Token=t0k3n-value&api_key=k3y-value&%73ecret=s3cr3t-value&password=pa55-value' +
      '&signature=s1g-value&sig=s2g-value&AUTH=au7h-value&accessToken=acc-value&page=2';
    const first = await s.server.get(`/p${query}`);
    expect(first.headers['x-isr-cache']).toBe('MISS');
    await s.cache.idle();
    expect((await s.server.get(`/p${query}`)).headers['x-isr-cache']).toBe('HIT');
    // A failed regeneration reports the page's key to onError and the regenerate:error event.
    s.failing.now = true;
    await s.cache.revalidatePath('/p');
    expect((await s.server.get(`/p${query}`)).headers['x-isr-cache']).toBe('STALE');
    await s.cache.idle();
    expect(s.recorder.errors.map(({ context }) => context.phase)).toContain('regenerate');
    expect(s.events.map((event) => event.name)).toEqual(
      expect.arrayContaining(['miss', 'hit', 'stale', 'regenerate:start', 'regenerate:error']),
    );

    const text = told(s);
    for (const value of ['t0k3n', 'k3y', 's3cr3t', 'pa55', 's1g', 's2g', 'au7h', 'acc-value']) {
      expect({ value, found: text.includes(value) }).toEqual({ value, found: false });
    }
    expect(text).toContain('page=2'); // what is not a credential stays readable
    expect(text).toContain('api_key=***');
    const regenerateError = s.recorder.errors.find(({ context }) => context.phase === 'regenerate');
    expect(regenerateError?.context.key).toMatch(/^\/p\?.*Token=\*\*\*.*page=2/);
    expect(debugLines.some((line) => /hit: \/p\?.*Token=\*\*\*/.test(line))).toBe(true);
  });
});
