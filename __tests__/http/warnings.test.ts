/**
 * Coded warnings: each doubtful set-up prints one warning through the
 * `logger` option, with a stable code and a README anchor that exists — ISR_SHORT_REVALIDATE,
 * ISR_MOUNTED_AFTER_ROUTES, ISR_SET_COOKIE, ISR_MEMORY_STORE_IN_CLUSTER, ISR_SHORT_SECRET,
 * ISR_UNKNOWN_OPTION —
 * once per process however often it is triggered, and not at all when silenced by the
 * `silence` option or the `EXPRESS_ISR_SILENCE` environment variable.
 *
 * "Once per process" is module state, so every test loads the library afresh
 * (`jest.isolateModules`): what one test printed cannot hide a warning from the next.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Request, Response } from 'express';
import request from 'supertest';
import { WARNINGS } from '../../lib/observability/warnings';
import { errorRecorder } from '../helpers/collect';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { freshLib } from '../helpers/fresh-lib';
import { fakeClock } from '../helpers/time';

type Lib = typeof import('../../lib');

const CODES = [
  'ISR_SHORT_REVALIDATE',
  'ISR_MOUNTED_AFTER_ROUTES',
  'ISR_SET_COOKIE',
  'ISR_MEMORY_STORE_IN_CLUSTER',
  'ISR_SHORT_SECRET',
  'ISR_UNKNOWN_OPTION',
] as const;
type Code = (typeof CODES)[number];

/** The codes of the warnings a recorder got, in order. */
function codes(warnings: unknown[][]): string[] {
  return warnings.map((args) => /\b(ISR_[A-Z_]+)\b/.exec(String(args[0]))?.[1] ?? String(args[0]));
}

/** Exactly one warning, for `code`: `[express-isr] CODE: … (README: #anchor)`. Returns its text. */
function expectOneWarning(warnings: unknown[][], code: Code): string {
  expect(codes(warnings)).toEqual([code]);
  const text = String(warnings[0][0]);
  expect(text.startsWith(`[express-isr] ${code}: `)).toBe(true);
  expect(text).toMatch(/README[^#]*#[\w-]+/);
  return text;
}

/** The anchor a warning points to (`#…` after `README`). */
function anchorOf(text: string): string | undefined {
  return /README[^#]*#([\w-]+)/.exec(text)?.[1];
}

/** Anchors GitHub makes for README.md: its headings (GitHub's slug rule) and explicit ids. */
function readmeAnchors(): Set<string> {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const anchors = new Set<string>();
  for (const [, heading] of readme.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    anchors.add(
      heading
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  for (const [, id] of readme.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id);
  return anchors;
}

const ENV_KEYS = ['NODE_ENV', 'NODE_APP_INSTANCE', 'EXPRESS_ISR_SILENCE'] as const;
let savedEnv: Record<string, string | undefined> = {};
beforeEach(() => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((key) => [key, process.env[key]]));
  delete process.env.NODE_APP_INSTANCE;
  delete process.env.EXPRESS_ISR_SILENCE;
});
afterEach(() => {
  for (const key of ENV_KEYS) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
});

/** Closed after every test, even a failing one. */
const caches: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

function newCache(lib: Lib, options: Parameters<Lib['isr']>[0] = {}) {
  const cache = lib.isr({ now: fakeClock().now, ...options });
  caches.push(cache);
  return cache;
}

describe('ISR_SHORT_REVALIDATE', () => {
  test('the revalidate option under 5 s, printed once however many caches have it', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { revalidate: 2, logger: recorder.logger });
    const text = expectOneWarning(recorder.warnings, 'ISR_SHORT_REVALIDATE');
    expect(text).toContain('2');
    newCache(lib, { revalidate: 2, logger: recorder.logger });
    newCache(lib, { revalidate: 1, logger: recorder.logger });
    expect(codes(recorder.warnings)).toEqual(['ISR_SHORT_REVALIDATE']);
  });

  test('5 s or more, false, and 0 print nothing', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { revalidate: 5, logger: recorder.logger });
    newCache(lib, { revalidate: false, logger: recorder.logger });
    newCache(lib, { revalidate: 60, logger: recorder.logger });
    expect(recorder.warnings).toEqual([]);
  });

  test.each(expressVersions)(
    'res.isr({ revalidate: 3 }) on a stored page, once (%s)',
    async (_name, createApp) => {
      const lib = freshLib();
      const recorder = errorRecorder();
      const cache = newCache(lib, { logger: recorder.logger });
      const app = createApp();
      app.use(cache);
      app.get('/live/:id', (_req: Request, res: Response) => {
        res.isr({ revalidate: 3 });
        res.send('<h1>scores</h1>');
      });
      expect(recorder.warnings).toEqual([]);
      for (const id of ['1', '1', '2', '3']) {
        expect((await request(app).get(`/live/${id}`)).status).toBe(200);
        await cache.idle();
      }
      const text = expectOneWarning(recorder.warnings, 'ISR_SHORT_REVALIDATE');
      expect(text).toContain('3');
    },
  );
});

describe.each(expressVersions)(
  'ISR_MOUNTED_AFTER_ROUTES (%s)',
  (_name, createApp: ExpressFactory) => {
    test('a route defined before app.use(isr()) is named, once', async () => {
      const lib = freshLib();
      const recorder = errorRecorder();
      const cache = newCache(lib, { logger: recorder.logger });
      const app = createApp();
      app.get('/early', (_req: Request, res: Response) => {
        res.send('<h1>early</h1>');
      });
      app.use(cache);
      app.get('/late', (_req: Request, res: Response) => {
        res.send('<h1>late</h1>');
      });
      expect((await request(app).get('/late')).headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      await request(app).get('/late');
      await request(app).get('/early');
      const text = expectOneWarning(recorder.warnings, 'ISR_MOUNTED_AFTER_ROUTES');
      expect(text).toContain('/early');
      expect(text).not.toContain('/late');
    });

    test('isr() mounted before every route prints nothing', async () => {
      const lib = freshLib();
      const recorder = errorRecorder();
      const cache = newCache(lib, { logger: recorder.logger });
      const app = createApp();
      app.use((_req, _res, next) => next()); // middleware before it is fine
      app.use(cache);
      app.get('/late', (_req: Request, res: Response) => {
        res.send('<h1>late</h1>');
      });
      expect((await request(app).get('/late')).status).toBe(200);
      await cache.idle();
      expect(recorder.warnings).toEqual([]);
    });
  },
);

describe.each(expressVersions)('ISR_SET_COOKIE (%s)', (_name, createApp: ExpressFactory) => {
  test('a page that sets a cookie is named once, however many requests and pages do it', async () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    const cache = newCache(lib, { logger: recorder.logger });
    const app = createApp();
    app.use(cache);
    app.get('/account', (_req: Request, res: Response) => {
      res.cookie('session', 'abc');
      res.send('<h1>hello you</h1>');
    });
    app.get('/cart', (_req: Request, res: Response) => {
      res.cookie('cart', '1');
      res.send('<h1>cart</h1>');
    });
    for (const url of ['/account', '/account', '/cart', '/account']) {
      expect((await request(app).get(url)).headers['x-isr-cache']).toBe('BYPASS');
    }
    await cache.idle();
    const text = expectOneWarning(recorder.warnings, 'ISR_SET_COOKIE');
    expect(text).toContain('/account');
  });
});

describe('ISR_MEMORY_STORE_IN_CLUSTER', () => {
  test('the default store with NODE_ENV=production and NODE_APP_INSTANCE set', () => {
    process.env.NODE_ENV = 'production';
    process.env.NODE_APP_INSTANCE = '0';
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { logger: recorder.logger });
    newCache(lib, { logger: recorder.logger });
    expectOneWarning(recorder.warnings, 'ISR_MEMORY_STORE_IN_CLUSTER');
  });

  test('one instance in production, or several outside production, print nothing', () => {
    const recorder = errorRecorder();
    process.env.NODE_ENV = 'production';
    newCache(freshLib(), { logger: recorder.logger });
    process.env.NODE_ENV = 'development';
    process.env.NODE_APP_INSTANCE = '0';
    newCache(freshLib(), { logger: recorder.logger });
    expect(recorder.warnings).toEqual([]);
  });
});

describe('ISR_UNKNOWN_OPTION', () => {
  test('a misspelt option is named (and ignored), once', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { revalidat: 10, logger: recorder.logger } as never);
    const text = expectOneWarning(recorder.warnings, 'ISR_UNKNOWN_OPTION');
    expect(text).toContain('"revalidat"');
    newCache(lib, { revalidat: 10, logger: recorder.logger } as never);
    expect(codes(recorder.warnings)).toEqual(['ISR_UNKNOWN_OPTION']);
  });

  test('known options, even undefined ones, print nothing', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { revalidate: 60, store: undefined, logger: recorder.logger });
    expect(recorder.warnings).toEqual([]);
  });
});

describe('ISR_SHORT_SECRET', () => {
  test('a webhook secret under 16 characters, once', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    const cache = newCache(lib, { logger: recorder.logger });
    lib.revalidateRouter(cache, { secret: 'hunter2', logger: recorder.logger });
    lib.revalidateRouter(cache, { secret: 'hunter3', logger: recorder.logger });
    const text = expectOneWarning(recorder.warnings, 'ISR_SHORT_SECRET');
    expect(text).not.toContain('hunter2'); // the secret itself is never printed
  });

  test('a long secret prints nothing', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    const cache = newCache(lib, { logger: recorder.logger });
    lib.revalidateRouter(cache, {
      secret: '3f9c2d7e8a1b4c6d9e0f1a2b3c4d5e6f',
      logger: recorder.logger,
    });
    expect(recorder.warnings).toEqual([]);
  });
});

test("the table of codes is the README's list of warnings, no more, no less", () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const documented = [...readme.matchAll(/^#### (ISR_[A-Z_]+)$/gm)].map((m) => m[1]);
  expect(Object.keys(WARNINGS).sort()).toEqual(documented.sort());
});

describe('silencing', () => {
  test("silence: ['ISR_SHORT_REVALIDATE'] suppresses it for that cache only", () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, {
      revalidate: 2,
      silence: ['ISR_SHORT_REVALIDATE'],
      logger: recorder.logger,
    });
    expect(recorder.warnings).toEqual([]);
    newCache(lib, { revalidate: 2, logger: recorder.logger });
    expectOneWarning(recorder.warnings, 'ISR_SHORT_REVALIDATE');
  });

  test('silencing one code leaves the others', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    newCache(lib, { revalidate: 2, silence: ['ISR_SET_COOKIE'], logger: recorder.logger });
    expectOneWarning(recorder.warnings, 'ISR_SHORT_REVALIDATE');
  });

  test('EXPRESS_ISR_SILENCE=ISR_SHORT_REVALIDATE suppresses it; a list works too', () => {
    const recorder = errorRecorder();
    process.env.EXPRESS_ISR_SILENCE = 'ISR_SHORT_REVALIDATE';
    newCache(freshLib(), { revalidate: 2, logger: recorder.logger });
    expect(recorder.warnings).toEqual([]);

    process.env.EXPRESS_ISR_SILENCE = 'ISR_SET_COOKIE, ISR_SHORT_REVALIDATE';
    newCache(freshLib(), { revalidate: 2, logger: recorder.logger });
    expect(recorder.warnings).toEqual([]);
  });

  test('EXPRESS_ISR_SILENCE reaches the router, and leaves the codes it does not name', () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    process.env.EXPRESS_ISR_SILENCE = 'ISR_SHORT_SECRET';
    const cache = newCache(lib, { revalidate: 2, logger: recorder.logger });
    lib.revalidateRouter(cache, { secret: 'short', logger: recorder.logger });
    expect(codes(recorder.warnings)).toEqual(['ISR_SHORT_REVALIDATE']);
  });

  test("isr({ silence }) reaches the router's warning, which goes to the cache's logger", () => {
    const lib = freshLib();
    const spy = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const silenced = errorRecorder();
      const quiet = newCache(lib, { logger: silenced.logger, silence: ['ISR_SHORT_SECRET'] });
      lib.revalidateRouter(quiet, { secret: 'short' });
      expect(codes(silenced.warnings)).toEqual([]);
      expect(spy).not.toHaveBeenCalled();

      const recorder = errorRecorder();
      const loud = newCache(lib, { logger: recorder.logger });
      lib.revalidateRouter(loud, { secret: 'short' });
      expect(codes(recorder.warnings)).toEqual(['ISR_SHORT_SECRET']);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

describe('where warnings go', () => {
  test('through the logger option, not console', () => {
    const spy = jest.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const lib = freshLib();
      const recorder = errorRecorder();
      newCache(lib, { revalidate: 2, logger: recorder.logger });
      expect(codes(recorder.warnings)).toEqual(['ISR_SHORT_REVALIDATE']);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  test('every code’s README anchor exists in README.md', async () => {
    process.env.NODE_ENV = 'production';
    process.env.NODE_APP_INSTANCE = '0';
    const lib = freshLib();
    const recorder = errorRecorder();
    const cache = newCache(lib, { revalidate: 2, logger: recorder.logger, typo: 1 } as never);
    lib.revalidateRouter(cache, { secret: 'short', logger: recorder.logger });
    const app = expressVersions[0][1]();
    app.get('/early', (_req: Request, res: Response) => {
      res.send('<h1>early</h1>');
    });
    app.use(cache);
    app.get('/account', (_req: Request, res: Response) => {
      res.cookie('session', 'abc');
      res.send('<h1>you</h1>');
    });
    await request(app).get('/account');
    await cache.idle();
    expect([...codes(recorder.warnings)].sort()).toEqual([...CODES].sort());

    const anchors = readmeAnchors();
    for (const [text] of recorder.warnings) {
      const anchor = anchorOf(String(text));
      expect({
        warning: String(text).slice(0, 45),
        anchor,
        inReadme: anchors.has(anchor ?? ''),
      }).toEqual({
        warning: String(text).slice(0, 45),
        anchor: expect.any(String),
        inReadme: true,
      });
    }
  });
});
