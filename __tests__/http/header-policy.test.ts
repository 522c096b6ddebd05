// The response's caching headers set the page's policy (README, "Caching headers set the
// policy"): one test per row of the README's table, plus the field-level parsing.
import type { Request, Response } from 'express';
import request from 'supertest';
import { isr } from '../../lib';
import { windowsFromHeaders } from '../../lib/invalidation/header-policy';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

const createApp = expressVersions[0][1];

/** A page sending `headers`, cached with the options' defaults unless `options` say otherwise. */
function site(headers: Record<string, string>, options: Parameters<typeof isr>[0] = {}) {
  const clock = fakeClock();
  const cache = isr({
    now: clock.now,
    revalidate: 60,
    maxStale: 1000,
    staleIfError: 1000,
    ...options,
  });
  cleanups.push(() => cache.close());
  const app = createApp();
  let renders = 0;
  let failing = false;
  app.use(cache);
  app.get('/page', (_req: Request, res: Response) => {
    renders += 1;
    if (failing) throw new Error('down');
    res.set(headers);
    res.send(`<p>render ${renders}</p>`);
  });
  app.get('/route-says', (_req: Request, res: Response) => {
    renders += 1;
    res.isr({ revalidate: 10 });
    res.set(headers);
    res.send(`<p>render ${renders}</p>`);
  });
  const state = async (path = '/page') => {
    const answer = await request(app).get(path);
    await cache.idle();
    return answer.headers['x-isr-cache'];
  };
  return {
    app,
    cache,
    clock,
    state,
    renders: () => renders,
    fail: () => {
      failing = true;
    },
  };
}

test('Cache-Control: s-maxage sets the window, stale-while-revalidate maxStale', async () => {
  const s = site({ 'cache-control': 's-maxage=30, stale-while-revalidate=100' });
  expect(await s.state()).toBe('MISS');
  s.clock.advanceSeconds(29);
  expect(await s.state()).toBe('HIT');
  s.clock.advanceSeconds(2);
  expect(await s.state()).toBe('STALE'); // regenerated: a new window starts now
  s.clock.advanceSeconds(30 + 101);
  expect(await s.state()).toBe('MISS'); // past its own maxStale (100), within the option's
});

test('the Cache-Control sent on stays consistent with what was stored', async () => {
  const s = site({
    'cache-control':
      'public, max-age=5, s-maxage=30, stale-while-revalidate=100, stale-if-error=50',
  });
  await s.state();
  const hit = await request(s.app).get('/page');
  expect(hit.headers['cache-control']).toBe(
    'public, max-age=5, s-maxage=30, stale-while-revalidate=100, stale-if-error=150',
  );
  expect((await s.cache.entry('/page'))?.revalidate).toBe(30);
});

test('CDN-Cache-Control (RFC 9213) wins over Cache-Control, and is consumed: the window goes on in Cache-Control', async () => {
  const s = site({
    'cdn-cache-control': 'max-age=20, stale-while-revalidate=40',
    'cache-control': 's-maxage=300',
  });
  await s.state();
  s.clock.advanceSeconds(21);
  expect(await s.state()).toBe('STALE');
  s.clock.advanceSeconds(20 + 41);
  expect(await s.state()).toBe('MISS');
  const hit = await request(s.app).get('/page');
  expect(hit.headers['cdn-cache-control']).toBeUndefined();
  expect(hit.headers['cache-control']).toContain('s-maxage=20, stale-while-revalidate=40');
});

test('Surrogate-Control is read (max-age=fresh+stale too) and consumed: never sent on', async () => {
  const s = site({ 'surrogate-control': 'max-age=20+30', 'cache-control': 's-maxage=300' });
  const miss = await request(s.app).get('/page');
  expect(miss.headers['surrogate-control']).toBeUndefined();
  await s.cache.idle();
  s.clock.advanceSeconds(21);
  const stale = await request(s.app).get('/page');
  expect(stale.headers['x-isr-cache']).toBe('STALE');
  expect(stale.headers['surrogate-control']).toBeUndefined();
  await s.cache.idle();
  s.clock.advanceSeconds(20 + 31);
  expect(await s.state()).toBe('MISS');
});

test.each([
  ['Cache-Control: s-maxage=0', { 'cache-control': 's-maxage=0' }],
  ['CDN-Cache-Control: max-age=0', { 'cdn-cache-control': 'max-age=0' }],
  ['CDN-Cache-Control: no-store', { 'cdn-cache-control': 'no-store' }],
  ['Cache-Control: private (as before)', { 'cache-control': 'private, s-maxage=60' }],
  ['Cache-Control: no-store (as before)', { 'cache-control': 'no-store' }],
])('%s: not stored, and not regenerated on every request', async (_name, headers) => {
  const s = site(headers);
  expect(await s.state()).toBe('BYPASS');
  expect(await s.state()).toBe('BYPASS');
  expect(await s.cache.entry('/page')).toBeUndefined();
  // One render for each visitor, one shared render to find out: no more.
  expect(s.renders()).toBeLessThanOrEqual(3);
});

test('max-age alone is the browser’s: the revalidate option applies', async () => {
  const s = site({ 'cache-control': 'max-age=0' }); // Express's res.sendFile default
  expect(await s.state()).toBe('MISS');
  s.clock.advanceSeconds(59);
  expect(await s.state()).toBe('HIT');
  expect((await s.cache.entry('/page'))?.revalidate).toBe(60);
});

test('must-revalidate: never served stale, not even in place of an error', async () => {
  const s = site({ 'cache-control': 's-maxage=30, stale-while-revalidate=100, must-revalidate' });
  await s.state();
  s.clock.advanceSeconds(31);
  expect(await s.state()).toBe('MISS');
  s.clock.advanceSeconds(31);
  s.fail();
  const answer = await request(s.app).get('/page');
  expect(answer.status).toBe(500);
});

test('res.isr() wins over the headers', async () => {
  const s = site({ 'cache-control': 's-maxage=300' });
  await s.state('/route-says');
  s.clock.advanceSeconds(11);
  expect(await s.state('/route-says')).toBe('STALE');
});

test('policyFromHeaders: false — the options (and res.isr) alone set the policy', async () => {
  const s = site({ 'cache-control': 's-maxage=0' }, { policyFromHeaders: false });
  expect(await s.state()).toBe('MISS');
  expect(await s.state()).toBe('HIT');
  expect((await s.cache.entry('/page'))?.revalidate).toBe(60);
});

test('where a field is absent, the option applies', async () => {
  const s = site({ 'cache-control': 's-maxage=30' }, { maxStale: 5 });
  await s.state();
  s.clock.advanceSeconds(30 + 6);
  expect(await s.state()).toBe('MISS');
});

describe('windowsFromHeaders (unit)', () => {
  test.each([
    [{ 'cache-control': 's-maxage=60' }, { from: 'cache-control', revalidate: 60 }],
    [{ 'cache-control': 'max-age=60' }, { from: 'cache-control' }],
    [
      { 'cache-control': 'S-MaxAge="60", Stale-While-Revalidate=5, stale-if-error=7' },
      { from: 'cache-control', revalidate: 60, maxStale: 5, staleIfError: 7 },
    ],
    [{ 'cache-control': 's-maxage=-1, stale-while-revalidate=1e3' }, { from: 'cache-control' }],
    [
      { 'cdn-cache-control': 'max-age=10', 'surrogate-control': 'max-age=20' },
      { from: 'cdn-cache-control', revalidate: 10 },
    ],
    [
      { 'surrogate-control': 'max-age=99;edge1, max-age=20' },
      { from: 'surrogate-control', revalidate: 20 },
    ],
    [
      { 'cache-control': 's-maxage=60, proxy-revalidate' },
      { from: 'cache-control', revalidate: 60, maxStale: 0, staleIfError: 0 },
    ],
    [{ 'cdn-cache-control': 'private' }, { from: 'cdn-cache-control', revalidate: 0 }],
    [
      // RFC 9110 §5.6.4: a comma inside a quoted string does not end the directive.
      { 'cache-control': 'foo="bar, s-maxage=99999", s-maxage=1' },
      { from: 'cache-control', revalidate: 1 },
    ],
    [
      { 'cdn-cache-control': 'max-age=60, s-maxage=600' },
      { from: 'cdn-cache-control', revalidate: 600 },
    ],
    [
      // What the targeted field leaves unsaid comes from Cache-Control's shared-cache directives.
      { 'cdn-cache-control': 'public, stale-while-revalidate=5', 'cache-control': 's-maxage=30' },
      { from: 'cdn-cache-control', revalidate: 30, maxStale: 5 },
    ],
    [{}, {}],
  ])('%p → %p', (headers, windows) => {
    expect(windowsFromHeaders(headers)).toEqual(windows);
  });
});
