// Every ```ts / ```js block of the README is accounted for: run by a test of its own (named
// here, and checked to use the block), run here with the few names its surroundings give it,
// or — a recipe that needs a service this suite cannot reach — said so, with why. A block
// added to the README without a line here fails this test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import express, { type Express } from 'express';
import type Keyv from 'keyv';
import client from 'prom-client';
import request from 'supertest';
import * as ts from 'typescript';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { readmeBlock } from '../helpers/readme-example';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';

const cleanups = cleanupsAfterEach();
const ROOT = path.join(__dirname, '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** How the blocks are run: as Node would load them after a TypeScript build. */
const COMMONJS: ts.CompilerOptions = {
  module: ts.ModuleKind.CommonJS,
  target: ts.ScriptTarget.ES2022,
  esModuleInterop: true,
};

type How = { runBy: string } | { runHere: true } | { notRun: string };

/** Each block, by the heading (or bold paragraph title) it follows. */
const BLOCKS: Record<string, How> = {
  '## Quick start': { runBy: 'http/readme-quick-start.test.ts' },
  '## Revalidate from your CMS': { runHere: true },
  '**A headless CMS recipe.**': { runHere: true },
  '### From code': { runHere: true },
  '### What `regenerate` answers': { runHere: true },
  '**Varnish**': { runHere: true },
  '**Cloudflare**': { runHere: true },
  '**Fastly**': { runHere: true },
  '## Sessions and logged-in users': { runBy: 'http/sessions.test.ts' },
  '## Running many instances': { runHere: true },
  '**node:cluster example.**': { runBy: 'e2e/shutdown-examples.test.ts' },
  '## Frameworks': {
    notRun:
      'the mount order of a framework app; examples/react-router and examples/astro are this recipe in full, built and run by __tests__/e2e/frameworks',
  },
  '## Shutting down': { runBy: 'e2e/shutdown-examples.test.ts' },
  '## Per response: `res.isr()`': { runHere: true },
  '### Response headers': {
    notRun: "a call to Cloudflare's API, which this suite cannot reach",
  },
  '### Events': { runHere: true },
  '### Metrics': { runHere: true },
  '## The store contract': { runHere: true },
};

/** The README's ts/js blocks, each with the heading or bold title it follows. */
function blocksOfReadme(): { after: string; lang: string; code: string }[] {
  const found: { after: string; lang: string; code: string }[] = [];
  let after = '';
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of README.split('\n')) {
    if (open !== undefined) {
      if (line.startsWith('```')) {
        if (open.lang === 'ts' || open.lang === 'js')
          found.push({ after, lang: open.lang, code: open.lines.join('\n') });
        open = undefined;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) {
      open = { lang: line.slice(3).trim(), lines: [] };
    } else if (/^#{2,4} /.test(line)) {
      after = line.trim();
    } else if (/^\*\*[^*]+\*\*/.test(line)) {
      after = /^\*\*[^*]+\*\*/.exec(line)?.[0] ?? after;
    }
  }
  return found;
}

test('every ts/js block of the README is run by a test, or says why not', () => {
  const blocks = blocksOfReadme();
  expect(blocks.map((b) => b.after).sort()).toEqual(Object.keys(BLOCKS).sort());
  for (const block of blocks) {
    // Whatever its fate, it is valid TypeScript.
    const { diagnostics } = ts.transpileModule(block.code, {
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    expect({ after: block.after, errors: diagnostics?.map((d) => d.messageText) }).toEqual({
      after: block.after,
      errors: [],
    });
    const how = BLOCKS[block.after];
    if ('runBy' in how) {
      // The test named runs this very block: it asks for it by the same heading.
      const source = readFileSync(path.join(__dirname, '..', how.runBy), 'utf8');
      expect({ test: how.runBy, uses: source.includes(`'${block.after}'`) }).toEqual({
        test: how.runBy,
        uses: true,
      });
    }
  }
});

/**
 * Runs a block as the body of an async function given `names` (what the text around it
 * defines: `app`, `cache`…). TypeScript is stripped first; imports become requires.
 */
async function runBlock(heading: string, names: Record<string, unknown>): Promise<void> {
  const code = ts.transpileModule(readmeBlock(heading), {
    compilerOptions: COMMONJS,
  }).outputText;
  const lib = path.join(ROOT, 'lib');
  const localRequire = (name: string) =>
    require(name === 'express-isr' ? lib : name === 'express-isr/purge' ? `${lib}/purge` : name);
  const body = `return (async () => {\n${code}\n})();`;
  const run = new Function('require', 'exports', ...Object.keys(names), body);
  await run(localRequire, {}, ...Object.values(names));
}

function blogApp(): Express {
  const app = express();
  return app;
}

test('## Revalidate from your CMS: the router it mounts answers a webhook with the secret', async () => {
  const app = blogApp();
  process.env.ISR_SECRET = 'readme-blocks-secret-0123456789abcdef';
  // The block mounts isr() and the router on `app`; a route is added after it, as its comment says.
  await runBlock('## Revalidate from your CMS', { app });
  // The block's cache is the first middleware it mounted: closed after the test.
  const mounted = (
    app as unknown as { router: { stack: { handle: { close?: () => Promise<void> } }[] } }
  ).router.stack.find((layer) => typeof layer.handle.close === 'function');
  cleanups.push(() => mounted?.handle.close?.());
  app.get('/blog/hello', (_req, res) => {
    res.isr({ tags: ['posts'] });
    res.send('<p>hello</p>');
  });
  await request(app).get('/blog/hello');
  const answer = await request(app)
    .post('/api/revalidate')
    .set('authorization', `Bearer ${process.env.ISR_SECRET}`)
    .send({ tag: 'posts' });
  expect(answer.status).toBe(200);
  expect(answer.body).toMatchObject({ revalidated: true, tags: ['posts'] });
});

test('## The store contract: the Map store it writes keeps a page (MISS, then HIT)', async () => {
  const app = blogApp();
  await runBlock('## The store contract', { app });
  const mounted = (
    app as unknown as {
      router: { stack: { handle: { close?: () => Promise<void>; idle?: () => Promise<void> } }[] };
    }
  ).router.stack.find((layer) => typeof layer.handle.close === 'function')?.handle;
  cleanups.push(() => mounted?.close?.());
  let renders = 0;
  app.get('/page', (_req, res) => {
    renders += 1;
    res.send('<p>page</p>');
  });
  expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('MISS');
  await mounted?.idle?.();
  const hit = await request(app).get('/page');
  expect(hit.headers['x-isr-cache']).toBe('HIT');
  expect(hit.text).toBe('<p>page</p>');
  expect(renders).toBe(1);
});

test('**A headless CMS recipe.**: the CMS payload becomes two invalidations', async () => {
  const app = blogApp();
  const cache = isr();
  cleanups.push(() => cache.close());
  app.use(cache);
  process.env.CMS_TOKEN = 'readme-cms-token';
  await runBlock('**A headless CMS recipe.**', { app, cache, express });
  const seen: string[] = [];
  cache.on('revalidate', ({ tags, mode }) => seen.push(`${tags.join(',')}:${mode}`));
  const refused = await request(app).post('/hooks/cms').send({});
  expect(refused.status).toBe(401);
  const answer = await request(app)
    .post('/hooks/cms')
    .set('x-cms-token', 'readme-cms-token')
    .send({ event: 'entry.unpublish', entry: { slug: 'hello' } });
  expect(answer.body).toEqual({ ok: true });
  expect(seen).toEqual(['post-hello:expire', 'posts:stale']);
});

test.each(['**Varnish**', '**Cloudflare**', '**Fastly**'])(
  '%s: the purger it builds is the cache onRevalidate (the purges: purge-*.test.ts)',
  async (heading) => {
    const made: Parameters<typeof isr>[0][] = [];
    const recordingIsr = (options: Parameters<typeof isr>[0]) => {
      made.push(options);
      const cache = isr(options);
      cleanups.push(() => cache.close());
      return cache;
    };
    // What the blocks read from the environment (the purgers check them when made).
    Object.assign(process.env, {
      CF_ZONE_ID: 'readme-zone',
      CF_PURGE_TOKEN: 'readme-cf-token',
      FASTLY_SERVICE_ID: 'readme-service',
      FASTLY_PURGE_TOKEN: 'readme-fastly-token',
    });
    await runBlock(heading, { isr: recordingIsr });
    expect(made).toHaveLength(1);
    expect(typeof made[0]?.onRevalidate).toBe('function');
  },
);

test('### From code: the four calls resolve', async () => {
  const cache = isr();
  cleanups.push(() => cache.close());
  await runBlock('### From code', { cache });
  expect(cache.stats().revalidations).toMatchObject({ stale: 2, expire: 1, regenerate: 1 });
});

test('### What `regenerate` answers: the counts of a regenerate', async () => {
  const cache = isr();
  cleanups.push(() => cache.close());
  const app = blogApp();
  app.use(cache);
  app.get('/blog/hello', (_req, res) => {
    res.isr({ tags: ['posts'] });
    res.send('<p>hello</p>');
  });
  await request(app).get('/blog/hello');
  await cache.idle();
  const logged: unknown[] = [];
  await runBlock('### What `regenerate` answers', {
    cache,
    console: { log: (line: unknown) => logged.push(line) },
  });
  expect(logged).toEqual(['1 re-rendered, 0 failed, 0 still going']);
});

test('## Running many instances: the Keyv it builds stores pages in Redis', async () => {
  const namespace = uniqueNamespace('readme-blocks');
  const app = blogApp();
  process.env.REDIS_URL = REDIS_URL;
  let built: { cache?: ReturnType<typeof isr>; keyv?: Keyv } = {};
  // The block's `const`s, handed back: it ends where the reader's code would go on.
  const code = `${readmeBlock('## Running many instances')}\nexports.cache = cache; exports.keyv = keyv;`;
  const out = ts
    .transpileModule(code, { compilerOptions: COMMONJS })
    .outputText.replace("namespace: 'isr'", `namespace: ${JSON.stringify(namespace)}`);
  const exported: typeof built = {};
  new Function('require', 'exports', 'isr', out)(
    (name: string) => require(name),
    exported,
    (options: Parameters<typeof isr>[0]) => isr({ ...options, l1: false }),
  );
  built = exported;
  const { cache, keyv } = built as { cache: ReturnType<typeof isr>; keyv: Keyv };
  cleanups.push(async () => {
    await cache.close();
    await keyv.clear();
    await keyv.disconnect();
  });
  expect((keyv as unknown as { store: unknown }).store).toBeInstanceOf(KeyvRedis);
  app.use(cache);
  app.get('/page', (_req, res) => res.send('<p>page</p>'));
  expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('HIT');
});

test('## Per response: `res.isr()`: the call in a route stores its window and tags', async () => {
  const app = blogApp();
  const cache = isr();
  cleanups.push(() => cache.close());
  app.use(cache);
  const routeBody = readmeBlock('## Per response: `res.isr()`');
  const route = new Function('res', 'post', routeBody) as (res: unknown, post: unknown) => void;
  app.get('/blog/hello', (_req, res) => {
    route(res, { slug: 'hello' });
    res.send('<p>hello</p>');
  });
  await request(app).get('/blog/hello');
  await cache.idle();
  expect(await cache.entry('/blog/hello')).toMatchObject({
    revalidate: 3600,
    tags: ['posts', 'post-hello'],
  });
});

test('### Events: the listeners it adds are called', async () => {
  let clock = Date.UTC(2026, 0, 1);
  const cache = isr({ revalidate: 1, now: () => clock });
  cleanups.push(() => cache.close());
  const logged: unknown[] = [];
  const log = { info: (entry: unknown) => logged.push(entry) };
  await runBlock('### Events', { cache, log, alert: () => {} });
  const app = blogApp();
  app.use(cache);
  app.get('/page', (_req, res) => res.send('<p>page</p>'));
  await request(app).get('/page');
  await cache.idle();
  clock += 2000;
  await request(app).get('/page');
  await cache.idle();
  expect(logged).toEqual([expect.objectContaining({ key: '/page', age: 2 })]);
});

test('### Metrics: /metrics answers the Prometheus text', async () => {
  const app = blogApp();
  client.register.clear();
  let made: ReturnType<typeof isr> | undefined;
  await runBlock('### Metrics', {
    app,
    isr: (options: Parameters<typeof isr>[0]) => {
      made = isr(options);
      return made;
    },
  });
  cleanups.push(() => made?.close());
  cleanups.push(() => client.register.clear());
  const answer = await request(app).get('/metrics');
  expect(answer.text).toContain('express_isr_requests_total');
});
