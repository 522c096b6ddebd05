/**
 * Property-style test of the webhook's input handling: a few hundred generated malformed or
 * hostile bodies (wrong types for every field, too many targets, deep nesting, `__proto__` /
 * `constructor` / `prototype` keys, invalid UTF-8, random bytes, control characters, paths
 * without `/`, wrong content types, oversized bodies), each sent with the correct secret in
 * the query string so that only the body is wrong. Every answer must be a 4xx with a JSON
 * `{ error }`, the server must keep running, `Object.prototype` must stay clean, and no cached
 * page may change. A seeded PRNG (mulberry32) keeps every run identical.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { isr, revalidateRouter } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { Random } from '../helpers/random';
import { fakeClock } from '../helpers/time';

const SECRET = 'Fuzz-Webhook-Secret-0123456789-XYZ';
const ENDPOINT = '/api/revalidate';
const CASES = 400;

/** Cached before the run; the tags their route gives them. Targets in fuzz bodies name them. */
const PAGES: Record<string, string[]> = {
  '/': ['everything'],
  '/blog': ['posts', 'everything'],
  '/blog/hello': ['posts', 'post-hello', 'everything'],
  '/blog/hello?ref=home': ['posts', 'post-hello', 'everything'],
  '/about': ['everything'],
};
const URLS = Object.keys(PAGES);
const VALID_PATHS = ['/', '/blog', '/blog/hello', '/about'];
const VALID_TAGS = ['posts', 'post-hello', 'everything'];

// ---------------------------------------------------------------------------------------------
// Generated cases: every one is wrong in its body (or content type, or size) in a known way
// ---------------------------------------------------------------------------------------------

interface Case {
  kind: string;
  body: Buffer;
  /** `undefined`: no Content-Type header at all. */
  contentType: string | undefined;
  /** Sent without Content-Length, in pieces (Transfer-Encoding: chunked). */
  chunked?: boolean;
  status: 400 | 413 | 415;
}

const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/vnd.api+json',
];
const NON_JSON_TYPES = [
  undefined,
  '',
  'text/plain',
  'text/html',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/jsonp',
  'application/json5',
  'application/octet-stream',
  '*/*',
  'json',
];

/** Some valid targets (maybe none), so that the one wrong thing is all that is wrong. */
function validTargets(r: Random): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (r.chance(0.5)) body.path = r.pick(VALID_PATHS);
  if (r.chance(0.4)) body.paths = VALID_PATHS.filter(() => r.chance(0.5));
  if (r.chance(0.4)) body.tag = r.pick(VALID_TAGS);
  if (r.chance(0.4)) body.tags = VALID_TAGS.filter(() => r.chance(0.5));
  if (r.chance(0.3)) body.mode = r.pick(['stale', 'expire', 'regenerate']);
  if (r.chance(0.2)) body.type = r.pick(['page', 'layout']);
  return body;
}

/** A JSON value that is not a string. */
function nonString(r: Random, depth = 0): unknown {
  const options: (() => unknown)[] = [
    () => r.between(-1e6, 1e6),
    () => r.next() * 1e-3,
    () => r.chance(0.5),
    () => null,
    () => [r.pick(VALID_PATHS)],
    () => ({ path: r.pick(VALID_PATHS) }),
    () => ({}),
    () => [],
  ];
  if (depth < 3) options.push(() => [nonString(r, depth + 1), nonString(r, depth + 1)]);
  return r.pick(options)();
}

/** A JSON value that is not an array of strings (an empty array would be valid). */
function notStringArray(r: Random): unknown {
  return r.pick<() => unknown>([
    () => r.pick(VALID_PATHS),
    () => r.between(0, 100),
    () => r.chance(0.5),
    () => null,
    () => ({ 0: r.pick(VALID_PATHS) }),
    () => [r.pick(VALID_PATHS), nonString(r)],
    () => [nonString(r)],
    () => [[r.pick(VALID_PATHS)]],
  ])();
}

/** A value that is not one of `allowed`. */
function notOneOf(r: Random, allowed: string[]): unknown {
  const word = r.pick(allowed);
  return r.pick<() => unknown>([
    () => word.toUpperCase(),
    () => `${word} `,
    () => ` ${word}`,
    () => `${word}${r.control()}`,
    () => `${word}s`,
    () => '',
    () => `x${r.text(r.between(0, 12))}`,
    () => [word],
    () => ({ [word]: true }),
    () => nonString(r),
  ])();
}

function badPath(r: Random): string {
  const valid = r.pick(VALID_PATHS);
  return r.pick<() => string>([
    () => '',
    () => valid.slice(1) || 'blog', // no leading slash
    () => `${r.pick([...'abcxyz.~-_ '])}${r.text(r.between(0, 20))}`, // never starts with /
    () => `http://example.com${valid}`,
    () => {
      const at = r.int(valid.length + 1);
      return `${valid.slice(0, at)}${r.control()}${valid.slice(at)}`;
    },
    () => `${valid}?x=${r.int(10)}`,
    () => `${valid}#frag`,
    () => `/${'a'.repeat(2100 + r.int(500))}`,
  ])();
}

function badTag(r: Random): string {
  const valid = r.pick(VALID_TAGS);
  return r.pick<() => string>([
    () => '',
    () => ' '.repeat(r.between(1, 5)),
    () => {
      const at = r.int(valid.length + 1);
      return `${valid.slice(0, at)}${r.control()}${valid.slice(at)}`;
    },
    () => 't'.repeat(2100 + r.int(500)),
  ])();
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

const generators: Record<string, (r: Random) => Omit<Case, 'kind'>> = {
  wrongType(r) {
    const body = validTargets(r);
    const field = r.pick(['path', 'paths', 'tag', 'tags', 'type', 'mode']);
    if (field === 'path' || field === 'tag') body[field] = nonString(r);
    else if (field === 'paths' || field === 'tags') body[field] = notStringArray(r);
    else
      body[field] = notOneOf(
        r,
        field === 'type' ? ['page', 'layout'] : ['stale', 'expire', 'regenerate'],
      );
    return { body: json(body), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  badString(r) {
    const body = validTargets(r);
    const field = r.pick(['path', 'paths', 'tag', 'tags']);
    if (field === 'path') body.path = badPath(r);
    if (field === 'tag') body.tag = badTag(r);
    if (field === 'paths') body.paths = [...VALID_PATHS.filter(() => r.chance(0.5)), badPath(r)];
    if (field === 'tags') body.tags = [badTag(r), ...VALID_TAGS.filter(() => r.chance(0.5))];
    return { body: json(body), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  tooMany(r) {
    const count = r.between(101, 400);
    const split = r.int(count + 1);
    const paths = Array.from({ length: split }, (_, i) =>
      i < VALID_PATHS.length ? VALID_PATHS[i] : `/gen/${i}`,
    );
    const tags = Array.from({ length: count - split }, (_, i) =>
      i < VALID_TAGS.length ? VALID_TAGS[i] : `gen-${i}`,
    );
    return { body: json({ paths, tags }), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  deepNesting(r) {
    const depth = r.between(1000, 5000);
    const arrays = `${'['.repeat(depth)}"${r.pick(VALID_PATHS)}"${']'.repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}"${r.pick(VALID_PATHS)}"${'}'.repeat(depth)}`;
    const text = r.pick([
      arrays,
      objects,
      `{"path":${arrays}}`,
      `{"tags":${arrays}}`,
      `{"paths":["/blog"],"mode":${objects}}`,
      `{"tag":"posts","type":${arrays}}`,
    ]);
    return { body: Buffer.from(text), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  protoKeys(r) {
    const path = r.pick(VALID_PATHS);
    const text = r.pick([
      `{"__proto__":{"path":"${path}"}}`,
      `{"__proto__":{"paths":["${path}"],"tags":["posts"],"mode":"expire"}}`,
      `{"constructor":{"prototype":{"path":"${path}"}}}`,
      `{"prototype":{"tag":"posts"}}`,
      `{"__proto__":{"isAdmin":true},"path":"${path.slice(1) || 'x'}"}`,
      `{"path":"${path}","__proto__":{"isAdmin":true},"mode":"purge"}`,
      `{"__proto__":null}`,
      `{"__proto__":[]}`,
      `{"constructor":{"name":"x"},"tags":"posts"}`,
      `{"__proto__":{"__proto__":{"tag":"posts"}}}`,
      `{"toString":"${path}","valueOf":{"path":"${path}"}}`,
      `{"hasOwnProperty":"path","path":{"__proto__":"${path}"}}`,
    ]);
    return { body: Buffer.from(text), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  invalidUtf8(r) {
    const text = JSON.stringify({ ...validTargets(r), path: r.pick(VALID_PATHS) });
    const bad = r.pick([
      [0xff],
      [0xfe],
      [0x80],
      [0xc0, 0xaf],
      [0xc3, 0x28],
      [0xe2, 0x82],
      [0xed, 0xa0, 0x80],
      [0xf5, 0x80, 0x80, 0x80],
      [0xf0, 0x9f, 0x98],
    ]);
    const at = r.between(1, text.length - 1);
    const bytes = Buffer.from(text);
    const body = Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]);
    return { body, contentType: r.pick(JSON_TYPES), status: 400 };
  },
  randomBytes(r) {
    return { body: r.bytes(r.between(1, 512)), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  controlChars(r) {
    const body = validTargets(r);
    const field = r.pick(['path', 'tag', 'mode', 'type']);
    const base =
      field === 'path'
        ? r.pick(VALID_PATHS)
        : field === 'tag'
          ? r.pick(VALID_TAGS)
          : field === 'mode'
            ? 'stale'
            : 'page';
    const at = r.int(base.length + 1);
    body[field] = `${base.slice(0, at)}${r.control()}${base.slice(at)}`;
    return { body: json(body), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  unparsable(r) {
    const text = JSON.stringify({ path: r.pick(VALID_PATHS), tags: ['posts'], mode: 'expire' });
    const broken = r.pick<() => string>([
      () => text.slice(0, r.between(1, text.length - 1)),
      () => `${text.slice(0, -1)},}`,
      () => text.replace(/"/g, "'"),
      () => text.replace(/"(\w+)":/g, '$1:'),
      () => `${text}${r.pick(['x', '}', ',', '{}', ' 1'])}`,
      () => `// comment\n${text}`,
      () => `{"path": NaN}`,
      () => `{"path": undefined}`,
      () => r.text(r.between(1, 40)),
    ])();
    return { body: Buffer.from(broken), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  notAnObject(r) {
    const value = r.pick<unknown>([
      r.between(-5, 5),
      'path',
      r.pick(VALID_PATHS),
      true,
      false,
      null,
      [],
      [r.pick(VALID_PATHS)],
      [{ path: r.pick(VALID_PATHS) }],
    ]);
    return { body: json(value), contentType: r.pick(JSON_TYPES), status: 400 };
  },
  wrongContentType(r) {
    // The body is a perfectly good request: only its declared type is wrong.
    const body = json({ path: r.pick(VALID_PATHS), tags: [r.pick(VALID_TAGS)] });
    return { body, contentType: r.pick(NON_JSON_TYPES), status: 415 };
  },
  oversized(r) {
    // A perfectly good request, padded past the 64 KB limit.
    const size = r.between(64 * 1024 + 1, 200 * 1024);
    const prefix = `{"path":"${r.pick(VALID_PATHS)}","padding":"`;
    const body = Buffer.from(`${prefix}${'x'.repeat(size - prefix.length - 2)}"}`);
    return { body, contentType: r.pick(JSON_TYPES), chunked: r.chance(0.5), status: 413 };
  },
};

function generateCases(seed: number, count: number): Case[] {
  const r = new Random(seed);
  const kinds = Object.keys(generators);
  return Array.from({ length: count }, (_, i) => {
    // Every kind at least a few times, then at random (oversized ones are rarer: they are big).
    let kind = i < kinds.length * 3 ? kinds[i % kinds.length] : r.pick(kinds);
    if (kind === 'oversized' && i >= kinds.length * 3 && r.chance(0.7)) kind = 'wrongType';
    return { kind, ...generators[kind](r) };
  });
}

// ---------------------------------------------------------------------------------------------
// The app under test, on a real server
// ---------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  contentType: string;
  text: string;
  headers: http.IncomingHttpHeaders;
}

function send(
  port: number,
  method: string,
  path: string,
  body?: Buffer,
  contentType?: string,
  chunked = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (body !== undefined && !chunked) headers['content-length'] = String(body.length);
    const req = http.request(
      { host: '127.0.0.1', port, path, method, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body !== undefined && chunked) {
      for (let at = 0; at < body.length; at += 16 * 1024)
        req.write(body.subarray(at, at + 16 * 1024));
    }
    req.end(chunked ? undefined : body);
  });
}

async function start(createApp: ExpressFactory) {
  const recorder = errorRecorder();
  const cache = isr({ now: fakeClock().now, onError: recorder.onError, logger: recorder.logger });
  const app: Express = createApp();
  let renders = 0;
  app.use(cache);
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET }));
  app.use((req, res) => {
    renders += 1;
    const tags = PAGES[req.originalUrl] ?? [];
    if (tags.length > 0) res.isr({ tags });
    res.send(`<p>${req.originalUrl} render ${renders}</p>`);
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const get = (url: string) => send(port, 'GET', url);
  /** Every page's state and body, in order. */
  const snapshot = async () => {
    const pages: Record<string, { status: number; state: unknown; text: string }> = {};
    for (const url of URLS) {
      const answer = await get(url);
      pages[url] = {
        status: answer.status,
        state: answer.headers['x-isr-cache'],
        text: answer.text,
      };
    }
    return pages;
  };
  for (const url of URLS) await get(url);
  await cache.idle();

  return {
    port,
    cache,
    recorder,
    renders: () => renders,
    get,
    snapshot,
    post: (query: string, body?: Buffer, contentType?: string, chunked = false) =>
      send(port, 'POST', `${ENDPOINT}${query}`, body, contentType, chunked),
    async stop() {
      await cache.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const withSecret = `?secret=${encodeURIComponent(SECRET)}`;
/** Names that a polluted prototype would make every object appear to have. */
const POLLUTION_PROBES = ['isAdmin', 'path', 'paths', 'tag', 'tags', 'mode', 'type', 'secret', 'a'];

function expectCleanPrototypes(before: string[]) {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
  const probe = {} as Record<string, unknown>;
  for (const name of POLLUTION_PROBES)
    expect({ name, value: probe[name] }).toEqual({ name, value: undefined });
  expect(([] as unknown as Record<string, unknown>).isAdmin).toBeUndefined();
}

describe.each(expressVersions)('webhook fuzzing (%s)', (name, createApp) => {
  let site: Awaited<ReturnType<typeof start>>;
  beforeEach(async () => {
    site = await start(createApp);
  });
  afterEach(async () => {
    await site.stop();
  });

  test(`${CASES} generated malformed bodies: each a 4xx JSON { error }, no entry changed, no pollution`, async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const before = await site.snapshot();
    for (const url of URLS) expect(before[url].state).toBe('HIT');
    const rendersBefore = site.renders();

    const cases = generateCases(name === 'express 5' ? 0x15a5eed : 0x4e4e4e, CASES);
    const kinds = new Set(cases.map((c) => c.kind));
    expect(kinds.size).toBe(Object.keys(generators).length);

    const failures: unknown[] = [];
    for (let at = 0; at < cases.length; at += 20) {
      const batch = cases.slice(at, at + 20);
      const answers = await Promise.all(
        batch.map((c) => site.post(withSecret, c.body, c.contentType, c.chunked)),
      );
      answers.forEach((answer, i) => {
        const c = batch[i];
        let error: unknown;
        try {
          error = JSON.parse(answer.text).error;
        } catch {
          error = undefined;
        }
        const ok =
          answer.status === c.status &&
          answer.contentType.startsWith('application/json') &&
          typeof error === 'string' &&
          error.length > 0;
        if (!ok) {
          failures.push({
            case: at + i,
            kind: c.kind,
            contentType: c.contentType,
            body: c.body.subarray(0, 120).toString('latin1'),
            expected: c.status,
            got: answer.status,
            answer: answer.text.slice(0, 200),
          });
        }
      });
    }
    expect(failures).toEqual([]);

    // Nothing changed, and the server still answers.
    expectCleanPrototypes(prototypeBefore);
    expect(await site.snapshot()).toEqual(before);
    expect(site.renders()).toBe(rendersBefore);
    expect(site.recorder.errors).toEqual([]);

    // The webhook itself still works after all that.
    const valid = await site.post(`${withSecret}&path=/about`);
    expect(valid.status).toBe(200);
    expect((await site.get('/about')).headers['x-isr-cache']).toBe('STALE');
  });

  test('__proto__ / constructor keys are never read as targets or as the secret', async () => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const before = await site.snapshot();
    const body = (text: string) => Buffer.from(text);
    const type = 'application/json';

    // The secret hidden in a prototype-looking key is not the secret.
    const hiddenSecrets = [
      `{"__proto__":{"secret":"${SECRET}"},"path":"/blog/hello"}`,
      `{"constructor":{"prototype":{"secret":"${SECRET}"}},"path":"/blog/hello"}`,
    ];
    for (const text of hiddenSecrets) {
      const answer = await site.post('', body(text), type);
      expect({ text, status: answer.status }).toEqual({ text, status: 401 });
    }
    // Targets hidden in the query string's prototype-looking names are not targets.
    const query = await site.post(
      `${withSecret}&__proto__[path]=/blog&constructor[prototype][tag]=posts`,
    );
    expect(query.status).toBe(400);
    expectCleanPrototypes(prototypeBefore);
    expect(await site.snapshot()).toEqual(before);

    // A hostile extra key does not change the authorisation: a wrong secret is refused...
    const hostile = body('{"path":"/blog/hello","__proto__":{"isAdmin":true}}');
    const refused = await site.post('?secret=wrong', hostile, type);
    expect(refused.status).toBe(401);
    expect(await site.snapshot()).toEqual(before);
    // ...and the right one is accepted, for the real target only, without polluting anything.
    const accepted = await site.post(withSecret, hostile, type);
    expect(accepted.status).toBe(200);
    expect(JSON.parse(accepted.text)).toMatchObject({ paths: ['/blog/hello'], tags: [] });
    expectCleanPrototypes(prototypeBefore);
    const after = await site.snapshot();
    expect(after['/blog/hello'].state).toBe('STALE');
    expect(after['/blog/hello?ref=home'].state).toBe('STALE');
    for (const url of ['/', '/blog', '/about']) expect(after[url]).toEqual(before[url]);
  });
});
