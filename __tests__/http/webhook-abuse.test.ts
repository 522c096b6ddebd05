/**
 * Webhook abuse: the secret is compared in constant time (digests through
 * `crypto.timingSafeEqual`, every candidate, whatever its length), and a flood of 3,000
 * generated hostile requests — no secret or a wrong one, wrong methods, wrong content types,
 * deep JSON, huge arrays, `__proto__` / `constructor.prototype` keys, invalid UTF-8, bodies at
 * and over the 64 KB limit, bad query targets — each gets a 4xx, nothing crashes, no cached
 * page changes (same bodies, still HIT, no render), and the heap does not grow with the run.
 * webhook-fuzz.test.ts checks the 4xx JSON contract of 400 malformed bodies with the right
 * secret; this suite is about volume, authentication and memory.
 */
import crypto from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Express } from 'express';
import { isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { listen } from '../helpers/http';
import { PRINTABLE, Random } from '../helpers/random';
import { fakeClock } from '../helpers/time';

const SECRET = 'Abuse-Webhook-Secret-0123456789-abcdefXYZ';
const ENDPOINT = '/api/revalidate';
const LIMIT = 64 * 1024;
const CASES = 3000;
/**
 * How much larger the heap may be after the flood than before it (the 2,700 requests after
 * the warm-up round, about 32 MB of bodies). With a forced garbage collection (V8's flag is
 * set at run time, see `collector`) the noise is a few MB, so 16 MB means "flat": keeping the
 * bodies, or about 6 KB of listeners, closures or buffers per request, would go past it.
 * Without a forced collection, garbage not yet collected counts too, hence 30 MB.
 */
const HEAP_GROWTH_BOUND = { collected: 16 * 1024 * 1024, uncollected: 30 * 1024 * 1024 };

const PAGES: Record<string, string[]> = {
  '/': ['everything'],
  '/blog': ['posts', 'everything'],
  '/blog/hello': ['posts', 'post-hello', 'everything'],
  '/blog/hello?ref=home': ['posts', 'post-hello', 'everything'],
  '/about': ['everything'],
};
const URLS = Object.keys(PAGES);
const PATHS = ['/', '/blog', '/blog/hello', '/about'];
const TAGS = ['posts', 'post-hello', 'everything'];

/** A real garbage collection when V8 lets us have one (flag set at run time), else none. */
function collector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

async function settledHeap(gc: (() => void) | undefined): Promise<number> {
  for (let i = 0; i < 3; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    gc?.();
  }
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------------------------
// Generated requests (seeded: every run sends the same 3,000)
// ---------------------------------------------------------------------------------------------

interface Case {
  kind: string;
  method: string;
  query: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The status the router must answer; `undefined`: any 4xx (several checks could fire first). */
  status?: number;
}

const JSON_TYPE = 'application/json';
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const withSecret = `?secret=${encodeURIComponent(SECRET)}`;

/** A valid request body: what a CMS would send. Only what the case changes makes it wrong. */
function goodBody(r: Random): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (r.chance(0.6)) body.path = r.pick(PATHS);
  else body.tags = [r.pick(TAGS)];
  if (r.chance(0.3)) body.mode = r.pick(['stale', 'expire', 'regenerate']);
  return body;
}

/** Secrets that are not the secret: shorter, longer, near misses, other encodings. */
function wrongSecret(r: Random): string {
  return r.pick<() => string>([
    () => '',
    () => 'x',
    () => SECRET.slice(0, -1),
    () => `${SECRET}x`,
    () => `${SECRET} `,
    () => ` ${SECRET}`,
    () => `${SECRET}\n`,
    () => SECRET.toLowerCase(),
    () => SECRET.toUpperCase(),
    () => `${SECRET.slice(0, 10)}${'A'.repeat(SECRET.length - 10)}`,
    () => Buffer.from(SECRET).toString('base64'),
    () => r.text(SECRET.length, PRINTABLE),
    () => r.text(r.between(1, 4000), PRINTABLE),
    () => SECRET.replace(/a/g, 'а'), // Cyrillic a: looks the same
  ])();
}

const generators: Record<string, (r: Random) => Case> = {
  noSecret(r) {
    return {
      kind: 'noSecret',
      method: 'POST',
      query: r.chance(0.5) ? '' : `?path=${r.pick(PATHS)}`,
      headers: { 'content-type': JSON_TYPE },
      body: json(goodBody(r)),
      status: 401,
    };
  },
  wrongSecretQuery(r) {
    return {
      kind: 'wrongSecretQuery',
      method: 'POST',
      query: `?secret=${encodeURIComponent(wrongSecret(r))}`,
      headers: { 'content-type': JSON_TYPE },
      body: json(goodBody(r)),
      status: 401,
    };
  },
  wrongSecretBearer(r) {
    // Header values are ASCII and trimmed on the wire: keep only the wrong ones that stay wrong.
    let secret = SECRET;
    while (secret === SECRET) secret = wrongSecret(r).replace(/[^\x21-\x7e]/g, '');
    const scheme = r.pick(['Bearer', 'bearer', 'Basic', 'Token', '']);
    const value = scheme === 'Basic' ? Buffer.from(`user:${SECRET}`).toString('base64') : secret;
    return {
      kind: 'wrongSecretBearer',
      method: 'POST',
      query: '',
      headers: {
        'content-type': JSON_TYPE,
        authorization: `${scheme} ${value}`.trim() || 'Bearer',
      },
      body: json(goodBody(r)),
      status: 401,
    };
  },
  wrongSecretBody(r) {
    const secret = r.pick<() => unknown>([
      () => wrongSecret(r),
      () => [SECRET],
      () => ({ toString: SECRET }),
      () => ({ value: SECRET }),
      () => 0,
      () => true,
      () => null,
    ])();
    return {
      kind: 'wrongSecretBody',
      method: 'POST',
      query: '',
      headers: { 'content-type': JSON_TYPE },
      body: json({ ...goodBody(r), secret }),
      status: 401,
    };
  },
  secretElsewhere(r) {
    // The right secret, somewhere the router does not read it from.
    const where = r.pick(['header', 'proto', 'constructor', 'nested', 'cookie', 'query-name']);
    const headers: Record<string, string> = { 'content-type': JSON_TYPE };
    let body = JSON.stringify(goodBody(r));
    let query = '';
    if (where === 'header') headers['x-secret'] = SECRET;
    if (where === 'cookie') headers.cookie = `secret=${SECRET}`;
    if (where === 'query-name') query = `?Secret=${SECRET}&SECRET=${SECRET}&secret[]=${SECRET}`;
    if (where === 'proto') body = `${body.slice(0, -1)},"__proto__":{"secret":"${SECRET}"}}`;
    if (where === 'constructor')
      body = `${body.slice(0, -1)},"constructor":{"prototype":{"secret":"${SECRET}"}}}`;
    if (where === 'nested') body = `${body.slice(0, -1)},"auth":{"secret":"${SECRET}"}}`;
    return {
      kind: 'secretElsewhere',
      method: 'POST',
      query,
      headers,
      body: Buffer.from(body),
      status: 401,
    };
  },
  wrongMethod(r) {
    return {
      kind: 'wrongMethod',
      method: r.pick(['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']),
      query: `${withSecret}&path=${r.pick(PATHS)}`,
      headers: {},
      status: 405,
    };
  },
  wrongContentType(r) {
    return {
      kind: 'wrongContentType',
      method: 'POST',
      query: withSecret,
      headers: r.pick<Record<string, string>>([
        {},
        { 'content-type': 'text/plain' },
        { 'content-type': 'application/x-www-form-urlencoded' },
        { 'content-type': 'multipart/form-data; boundary=x' },
        { 'content-type': 'application/xml' },
        { 'content-type': 'text/json' },
        { 'content-type': 'application/javascript' },
        { 'content-type': 'json' },
      ]),
      body: json(goodBody(r)),
      status: 415,
    };
  },
  deepJson(r) {
    const depth = r.between(2000, 20_000);
    const open = r.pick(['[', '{"a":']);
    const close = open === '[' ? ']' : '}';
    const nested = `${open.repeat(depth)}"/blog"${close.repeat(depth)}`;
    const text = r.pick([nested, `{"path":${nested}}`, `{"tags":${nested}}`, `{"mode":${nested}}`]);
    return {
      kind: 'deepJson',
      method: 'POST',
      query: withSecret,
      headers: { 'content-type': JSON_TYPE },
      body: Buffer.from(text.length > LIMIT ? text.slice(0, LIMIT) : text),
      status: 400,
    };
  },
  hugeArray(r) {
    // As many elements as fit under the limit: too many targets, or not strings at all.
    const element = r.pick(['"/blog"', '1', 'null', '{}', '[]', '"posts"']);
    const count = Math.floor((LIMIT - 20) / (element.length + 1));
    const field = r.pick(['paths', 'tags', 'path', 'tag', 'mode']);
    const text = `{"${field}":[${Array(count).fill(element).join(',')}]}`;
    return {
      kind: 'hugeArray',
      method: 'POST',
      query: withSecret,
      headers: { 'content-type': JSON_TYPE },
      body: Buffer.from(text),
      status: 400,
    };
  },
  prototypeKeys(r) {
    const path = r.pick(PATHS);
    const text = r.pick([
      `{"__proto__":{"path":"${path}"}}`,
      `{"__proto__":{"paths":["${path}"],"mode":"expire"}}`,
      `{"constructor":{"prototype":{"tags":["posts"]}}}`,
      `{"__proto__":{"__proto__":{"tag":"posts"}}}`,
      `{"__proto__":null,"prototype":{"path":"${path}"}}`,
      `{"tags":{"__proto__":["posts"]}}`,
      `{"paths":{"length":1,"0":"${path}"}}`,
      `{"path":"${path}","mode":{"__proto__":"expire"}}`,
      `{"path":"${path}","type":"constructor"}`,
      `{"path":"${path}","mode":"__proto__"}`,
      `{"path":"${path}","mode":"toString"}`,
    ]);
    return {
      kind: 'prototypeKeys',
      method: 'POST',
      query: withSecret,
      headers: { 'content-type': JSON_TYPE },
      body: Buffer.from(text),
      status: 400,
    };
  },
  invalidUtf8(r) {
    const text = JSON.stringify(goodBody(r));
    const bad = Buffer.from(
      r.pick([
        [0xff],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xe2, 0x82],
      ]),
    );
    const at = r.between(1, text.length - 1);
    return {
      kind: 'invalidUtf8',
      method: 'POST',
      query: withSecret,
      headers: { 'content-type': `${JSON_TYPE}; charset=utf-8` },
      body: Buffer.concat([Buffer.from(text.slice(0, at)), bad, Buffer.from(text.slice(at))]),
      status: 400,
    };
  },
  atTheLimit(r) {
    // Exactly 64 KB of well-formed JSON that names nothing to revalidate, or one invalid byte.
    const prefix = '{"padding":"';
    const text = `${prefix}${'p'.repeat(LIMIT - prefix.length - 2)}"}`;
    const body = Buffer.from(text);
    if (r.chance(0.5)) body[r.between(prefix.length, LIMIT - 3)] = 0xff;
    return {
      kind: 'atTheLimit',
      method: 'POST',
      query: withSecret,
      headers: { 'content-type': JSON_TYPE },
      body,
      status: 400,
    };
  },
  overTheLimit(r) {
    // A valid request padded past the limit, declared or streamed without a length.
    const size = r.chance(0.8) ? LIMIT + r.between(1, 64) : r.between(LIMIT * 2, LIMIT * 16);
    const prefix = `{"path":"${r.pick(PATHS)}","padding":"`;
    const body = Buffer.from(`${prefix}${'x'.repeat(size - prefix.length - 2)}"}`);
    const chunked = r.chance(0.5);
    const headers: Record<string, string> = { 'content-type': JSON_TYPE };
    if (chunked) headers['transfer-encoding'] = 'chunked';
    return {
      kind: 'overTheLimit',
      method: 'POST',
      query: withSecret,
      headers,
      body,
      status: 413,
    };
  },
  badQuery(r) {
    const query = r.pick([
      '&path=blog',
      '&path=',
      '&path=%2Fblog%0A',
      `&path=/${'a'.repeat(2100)}`,
      '&path=/blog?x=1',
      '&path=/blog&mode=purge',
      '&path=/blog&mode=stale&mode=expire',
      '&path=/blog&type=layout&type=page',
      '&path=/blog&type=tree',
      '&tag=%20%20',
      '&tag=post%00s',
      '',
      '&mode=expire',
      `&${Array.from({ length: 101 }, (_, i) => `paths=/p${i}`).join('&')}`,
      '&__proto__[path]=/blog',
      '&constructor[prototype][tag]=posts',
    ]);
    return {
      kind: 'badQuery',
      method: 'POST',
      query: `${withSecret}${query}`,
      headers: {},
      status: 400,
    };
  },
  hostileEverything(r) {
    // Wrong secret and a malformed body together: refused, whichever check fires first.
    const body = r.pick([
      Buffer.from('{"path":'),
      Buffer.from([0xff, 0xfe, 0x00]),
      Buffer.from(`{"__proto__":{"path":"/"},"secret":"${wrongSecret(r)}"}`),
      Buffer.from('[]'),
      Buffer.alloc(LIMIT + 1, 0x20),
    ]);
    return {
      kind: 'hostileEverything',
      method: 'POST',
      query: `?secret=${encodeURIComponent(wrongSecret(r))}`,
      headers: { 'content-type': r.pick([JSON_TYPE, 'text/plain']) },
      body,
    };
  },
};

function generateCases(seed: number, count: number): Case[] {
  const r = new Random(seed);
  const kinds = Object.keys(generators);
  return Array.from({ length: count }, (_, i) => {
    let kind = i < kinds.length * 4 ? kinds[i % kinds.length] : r.pick(kinds);
    // Large bodies are rarer after the first rounds: they are slow to send, not more telling.
    if ((kind === 'overTheLimit' || kind === 'atTheLimit') && r.chance(0.6)) kind = 'noSecret';
    return generators[kind](r);
  });
}

// ---------------------------------------------------------------------------------------------
// The site
// ---------------------------------------------------------------------------------------------

const cleanups = cleanupsAfterEach();

async function start(createApp: ExpressFactory) {
  const recorder = errorRecorder();
  const cache = isr({ now: fakeClock().now, onError: recorder.onError, logger: recorder.logger });
  const app: Express = createApp();
  let renders = 0;
  app.use(cache);
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET, logger: recorder.logger }));
  app.use((req, res) => {
    renders += 1;
    const tags = PAGES[req.originalUrl] ?? [];
    if (tags.length > 0) res.isr({ tags });
    res.send(`<p>${req.originalUrl} render ${renders}</p>`);
  });
  const site = await listen(app);
  cleanups.push(async () => {
    await cache.close();
    await site.close();
  });

  const snapshot = async () => {
    const pages: Record<string, string> = {};
    for (const url of URLS) {
      const answer = await site.get(url);
      pages[url] = `${answer.status} ${answer.headers['x-isr-cache']} ${answer.body}`;
    }
    return pages;
  };
  for (const url of URLS) await site.get(url);
  await cache.idle();
  return { site, cache, recorder, snapshot, renders: () => renders };
}

function post(
  site: Awaited<ReturnType<typeof start>>['site'],
  query: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return site.send({
    method: 'POST',
    path: `${ENDPOINT}${query}`,
    headers: { 'content-type': JSON_TYPE, ...headers },
    body: JSON.stringify(body),
  });
}

describe('the secret is compared in constant time', () => {
  let spy: jest.SpyInstance;
  beforeEach(() => {
    spy = jest.spyOn(crypto, 'timingSafeEqual');
  });
  afterEach(() => {
    spy.mockRestore();
  });

  /** Every comparison was of two buffers of one length: digests, never the raw strings. */
  function expectDigestComparisons() {
    expect(spy.mock.calls.length).toBeGreaterThan(0);
    for (const [a, b] of spy.mock.calls as [NodeJS.ArrayBufferView, NodeJS.ArrayBufferView][]) {
      expect(a.byteLength).toBe(b.byteLength);
    }
  }

  test.each([
    ['one character', 'x'],
    ['much longer than the secret', 'y'.repeat(500)],
    ['the same length, one character off', `${SECRET.slice(0, -1)}!`],
    ['the secret plus one character', `${SECRET}!`],
  ])(
    'a wrong secret (%s) goes through crypto.timingSafeEqual and gets a 401',
    async (_l, wrong) => {
      const { site, snapshot } = await start(expressVersions[0][1]);
      const before = await snapshot();
      spy.mockClear();
      for (const how of ['query', 'bearer', 'body'] as const) {
        const answer =
          how === 'query'
            ? await post(site, `?secret=${encodeURIComponent(wrong)}`, { path: '/blog' })
            : how === 'bearer'
              ? await post(site, '', { path: '/blog' }, { authorization: `Bearer ${wrong}` })
              : await post(site, '', { path: '/blog', secret: wrong });
        expect({ how, status: answer.status }).toEqual({ how, status: 401 });
      }
      expectDigestComparisons();
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(3);
      expect(await snapshot()).toEqual(before);
    },
  );

  test('every candidate is compared, right or wrong, so the time taken does not say which matched', async () => {
    const { site } = await start(expressVersions[0][1]);
    const bodies = [
      { secret: 'wrong-1', bearer: 'wrong-2', query: 'wrong-3' },
      { secret: SECRET, bearer: 'wrong-2', query: 'wrong-3' },
      { secret: 'wrong-1', bearer: SECRET, query: 'wrong-3' },
      { secret: 'wrong-1', bearer: 'wrong-2', query: SECRET },
    ];
    const counts: number[] = [];
    for (const { secret, bearer, query } of bodies) {
      spy.mockClear();
      const answer = await post(
        site,
        `?secret=${encodeURIComponent(query)}`,
        { tag: 'posts', secret },
        { authorization: `Bearer ${bearer}` },
      );
      expect(answer.status).toBe(
        secret === SECRET || bearer === SECRET || query === SECRET ? 200 : 401,
      );
      expectDigestComparisons();
      counts.push(spy.mock.calls.length);
    }
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBeGreaterThanOrEqual(3);
  });
});

describe.each(expressVersions)('a flood of hostile webhook calls (%s)', (name, createApp) => {
  test(`${CASES} generated hostile requests: each a 4xx, no crash, no page changed, heap flat`, async () => {
    const { site, cache, recorder, snapshot, renders } = await start(createApp);
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const before = await snapshot();
    for (const url of URLS) expect(before[url]).toMatch(/^200 HIT /);
    const rendersBefore = renders();

    const cases = generateCases(name === 'express 5' ? 0xabad1dea : 0x5eed4e4, CASES);
    expect(new Set(cases.map((c) => c.kind)).size).toBe(Object.keys(generators).length);
    const gc = collector();

    const failures: unknown[] = [];
    const byKind: Record<string, number> = {};
    let bytesSent = 0;
    const run = async (slice: Case[]) => {
      for (let at = 0; at < slice.length; at += 25) {
        const batch = slice.slice(at, at + 25);
        const answers = await Promise.all(
          batch.map((c) =>
            site.send({
              method: c.method,
              path: `${ENDPOINT}${c.query}`,
              headers: c.headers,
              body: c.body,
              timeoutMs: 10_000,
            }),
          ),
        );
        answers.forEach((answer, i) => {
          const c = batch[i];
          bytesSent += c.body?.length ?? 0;
          byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
          const refused = answer.status >= 400 && answer.status < 500;
          const expected = c.status === undefined || answer.status === c.status;
          if (answer.error !== undefined || !refused || !expected) {
            failures.push({
              kind: c.kind,
              method: c.method,
              query: c.query.slice(0, 120),
              headers: c.headers,
              body: c.body?.subarray(0, 120).toString('latin1'),
              expected: c.status ?? '4xx',
              got: answer.error ?? answer.status,
              answer: answer.body.slice(0, 200),
            });
          }
        });
      }
    };

    // A first round warms up every code path, so the heap is measured from a steady state.
    const warmUp = 300;
    await run(cases.slice(0, warmUp));
    const heapBefore = await settledHeap(gc);
    await run(cases.slice(warmUp));
    const heapAfter = await settledHeap(gc);

    expect(failures).toEqual([]);
    expect(Object.values(byKind).reduce((a, b) => a + b, 0)).toBe(CASES);

    // Nothing changed: same pages, still HITs, no render; nothing reported; no pollution.
    expect(await snapshot()).toEqual(before);
    expect(renders()).toBe(rendersBefore);
    expect(recorder.errors).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).path).toBeUndefined();

    const growth = heapAfter - heapBefore;
    console.log(
      `[webhook-abuse ${name}] ${CASES} hostile requests (${(bytesSent / 1024 / 1024).toFixed(1)} MB of bodies), ` +
        `${failures.length} not refused; heap ${(heapBefore / 1024 / 1024).toFixed(1)} → ${(heapAfter / 1024 / 1024).toFixed(1)} MB ` +
        `(gc ${gc ? 'forced' : 'not available'}); by kind ${JSON.stringify(byKind)}`,
    );
    expect(growth).toBeLessThan(gc ? HEAP_GROWTH_BOUND.collected : HEAP_GROWTH_BOUND.uncollected);

    // The webhook still works after all that, and does what it is asked.
    const valid = await post(site, withSecret, { path: '/about' });
    expect(valid.status).toBe(200);
    expect((await site.get('/about')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
  }, 90_000);
});
