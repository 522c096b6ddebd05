/**
 * Per-response configuration: `res.isr({ revalidate, tags })` may be
 * called several times (tags accumulate, the last revalidate wins); the global default
 * `revalidate` (60 s), the `revalidate` option, a per-response override, `revalidate: false`;
 * impossible values throw a TypeError that reaches the app's error handler; and `res.isr` is
 * typed on Express's Response.
 */
import path from 'node:path';
import type { ErrorRequestHandler, Express, Request, Response } from 'express';
import request from 'supertest';
import ts from 'typescript';
import { type CacheEntry, type IsrOptions, isr, MemoryStore } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

type Handler = (req: Request, res: Response) => void;

const DAY = 24 * 60 * 60;

describe.each(expressVersions)('res.isr() and revalidate windows (%s)', (_name, createApp) => {
  function setup(handler: Handler, options: IsrOptions = {}) {
    const clock = fakeClock();
    const store = new MemoryStore();
    const cache = isr({ now: clock.now, store, ...options });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (req, res) => {
      renders += 1;
      handler(req, res);
      if (!res.headersSent) res.send(`<h1>render ${renders}</h1>`);
    });
    const onError: ErrorRequestHandler = (err: Error, _req, res, _next) => {
      res.status(500).type('text/plain').send(`${err.name}: ${err.message}`);
    };
    app.use(onError);
    return { app, cache, clock, store, renders: () => renders };
  }

  /** Renders the page once and waits until it is stored. */
  async function prime(app: Express, cache: ReturnType<typeof isr>) {
    const miss = await request(app).get('/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
  }

  async function stateAfter(app: Express, clock: ReturnType<typeof fakeClock>, seconds: number) {
    clock.advanceSeconds(seconds);
    return (await request(app).get('/page')).headers['x-isr-cache'];
  }

  test('tags accumulate over several res.isr() calls', async () => {
    const { app, cache, store } = setup((_req, res) => {
      res.isr({ tags: ['posts', 'post-1'] });
      res.isr({ revalidate: 30 });
      res.isr({ tags: ['author-7'] });
      res.isr({ tags: ['posts'] });
    });
    await prime(app, cache);
    const entry = store.get('/page') as CacheEntry;
    expect([...new Set(entry.tags)].sort()).toEqual(['author-7', 'post-1', 'posts']);
    expect(entry.revalidate).toBe(30);
  });

  test('the last revalidate wins (a longer one last)', async () => {
    const { app, cache, clock } = setup((_req, res) => {
      res.isr({ revalidate: 5 });
      res.isr({ revalidate: 100, tags: ['a'] });
      res.isr({ tags: ['b'] }); // no revalidate: does not reset it
    });
    await prime(app, cache);
    expect(await stateAfter(app, clock, 99)).toBe('HIT');
    expect(await stateAfter(app, clock, 2)).toBe('STALE');
  });

  test('the last revalidate wins (a shorter one last)', async () => {
    const { app, cache, clock } = setup((_req, res) => {
      res.isr({ revalidate: 100 });
      res.isr({ revalidate: 5 });
    });
    await prime(app, cache);
    expect(await stateAfter(app, clock, 4)).toBe('HIT');
    expect(await stateAfter(app, clock, 2)).toBe('STALE');
  });

  test('the global default revalidate is 60 s', async () => {
    const { app, cache, clock } = setup(() => {});
    await prime(app, cache);
    expect(await stateAfter(app, clock, 59)).toBe('HIT');
    expect(await stateAfter(app, clock, 2)).toBe('STALE');
  });

  test('the revalidate option sets the window', async () => {
    const { app, cache, clock } = setup(() => {}, { revalidate: 10 });
    await prime(app, cache);
    expect(await stateAfter(app, clock, 9)).toBe('HIT');
    expect(await stateAfter(app, clock, 2)).toBe('STALE');
  });

  test('res.isr({ revalidate: 3600 }) overrides the global revalidate', async () => {
    const { app, cache, clock } = setup(
      (_req, res) => {
        res.isr({ revalidate: 3600 });
      },
      { revalidate: 10 },
    );
    await prime(app, cache);
    expect(await stateAfter(app, clock, 11)).toBe('HIT');
    expect(await stateAfter(app, clock, 3599 - 11)).toBe('HIT');
    expect(await stateAfter(app, clock, 2)).toBe('STALE');
  });

  test('res.isr({ revalidate: false }) never goes stale by time', async () => {
    const { app, cache, clock, renders } = setup((_req, res) => {
      res.isr({ revalidate: false });
    });
    await prime(app, cache);
    expect(await stateAfter(app, clock, 61)).toBe('HIT');
    expect(await stateAfter(app, clock, 400 * DAY)).toBe('HIT');
    await cache.idle();
    expect(renders()).toBe(1);
  });

  test('the option revalidate: false never goes stale by time', async () => {
    const { app, cache, clock, renders } = setup(() => {}, { revalidate: false });
    await prime(app, cache);
    expect(await stateAfter(app, clock, 400 * DAY)).toBe('HIT');
    await cache.idle();
    expect(renders()).toBe(1);
  });

  test.each([
    ['res.isr({ revalidate: -1 })', { revalidate: -1 }, /revalidate/, '-1'],
    ['res.isr({ revalidate: "10" })', { revalidate: '10' }, /revalidate/, '"10"'],
    ['res.isr({ tags: "x" })', { tags: 'x' }, /tags/, '"x"'],
  ])('%s throws a TypeError that reaches the error handler', async (_label, config, names, got) => {
    const { app, renders } = setup((_req, res) => {
      res.isr(config as unknown as Parameters<Response['isr']>[0]);
    });
    const response = await request(app).get('/page');
    expect(response.status).toBe(500);
    expect(response.text).toMatch(/^TypeError: /);
    expect(response.text).toMatch(names);
    expect(response.text).toContain(got);
    expect(renders()).toBe(1);
  });
});

describe('res.isr typing', () => {
  // Checked by `tsc --noEmit` too: no cast needed on Express's Response.
  const typed: Handler = (_req, res) => {
    res.isr({ revalidate: 5, tags: ['a'] });
    res.isr({ revalidate: false });
    res.send('ok');
  };

  /** Type-checks `source` as a file of this project (ts-jest only transpiles). */
  function typeErrors(source: string): string[] {
    const root = path.resolve(__dirname, '..', '..');
    const configFile = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
    const fileName = path.join(__dirname, '__typing-probe__.ts');
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    const fileExists = host.fileExists.bind(host);
    const readFile = host.readFile.bind(host);
    host.fileExists = (name) => name === fileName || fileExists(name);
    host.readFile = (name) => (name === fileName ? source : readFile(name));
    host.getSourceFile = (name, languageVersion, ...rest) =>
      name === fileName
        ? ts.createSourceFile(name, source, languageVersion)
        : getSourceFile(name, languageVersion, ...rest);
    const program = ts.createProgram([fileName], { ...options, noEmit: true }, host);
    return ts
      .getPreEmitDiagnostics(program, program.getSourceFile(fileName))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }

  const probe = (body: string) => `
    import express from 'express';
    import { isr } from '../../lib';
    const app = express();
    app.use(isr());
    app.get('/', (_req, res) => {
      ${body}
      res.send('ok');
    });
  `;

  test('res.isr({ revalidate: 5, tags: ["a"] }) compiles without casts', () => {
    expect(typeof typed).toBe('function');
    expect(
      typeErrors(probe("res.isr({ revalidate: 5, tags: ['a'] }); res.isr({ revalidate: false });")),
    ).toEqual([]);
  });

  test('a wrongly typed res.isr() call does not compile', () => {
    const errors = typeErrors(probe("res.isr({ revalidate: '5', tags: 'a' });"));
    expect(errors.join('\n')).toMatch(/'string' is not assignable/);
  });
});
