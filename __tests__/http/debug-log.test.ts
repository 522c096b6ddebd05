/**
 * Debug logs: with `DEBUG=express-isr` the resolved options are printed once
 * at start-up — without the logger object and without a password from a store URL — and each
 * decision is one line with its key and reason, so that a page's life reads as a story:
 * miss → store → hit → stale (why) → regenerate started → regenerate done.
 */
import express, { type Request, type Response } from 'express';
import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { recordDebugLines } from '../helpers/debug-lines';
import { freePort } from '../helpers/instances';
import { recordedCache } from '../helpers/site';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

/** Lines `debug('express-isr')` writes while a test runs, without the date and namespace. */
const debugLines = recordDebugLines();

/** The lines, in order, that match each pattern in turn (fails naming the first one missing). */
function expectStory(lines: string[], patterns: RegExp[]): void {
  let from = 0;
  for (const pattern of patterns) {
    const at = lines.findIndex((line, i) => i >= from && pattern.test(line));
    expect({ pattern: String(pattern), found: at !== -1, lines }).toEqual({
      pattern: String(pattern),
      found: true,
      lines,
    });
    from = at + 1;
  }
}

describe('debug log', () => {
  test('the resolved options, once at start-up, without the logger or a store password', async () => {
    const port = await freePort(); // nobody listens there: nothing is ever connected
    const recorder = errorRecorder();
    const logger = { ...recorder.logger, marker: 'LOGGER-OBJECT-7F3A' };
    const cache = isr({
      store: `redis://admin:s3cr3t-Pa55word@127.0.0.1:${port}`,
      storeTimeout: 50,
      revalidate: 120,
      logger,
      onError: recorder.onError,
    });
    try {
      const options = debugLines.filter((line) => line.startsWith('options'));
      expect(options).toHaveLength(1);
      expect(options[0]).toContain('120'); // the resolved revalidate
      expect(options[0]).toContain('store');
      expect(options[0]).not.toContain('LOGGER-OBJECT-7F3A');
      expect(options[0]).not.toContain('[Function: warn]');
      for (const line of debugLines) expect(line).not.toContain('s3cr3t-Pa55word');
    } finally {
      await cache.close();
    }
    for (const line of debugLines) expect(line).not.toContain('s3cr3t-Pa55word');
  });

  test('the options are printed once, not again on requests', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/p', (_req: Request, res: Response) => {
      res.send('<h1>p</h1>');
    });
    await request(app).get('/p');
    await cache.idle();
    await request(app).get('/p');
    await request(app).get('/p');
    expect(debugLines.filter((line) => line.startsWith('options'))).toHaveLength(1);
  });

  test('MISS → HIT → STALE → regeneration reads as a story, one line per decision', async () => {
    const { clock, cache } = recordedCache({ revalidate: 10 });
    cleanups.push(() => cache.close());
    const app = express();
    let version = 1;
    app.use(cache);
    app.get('/p', (_req: Request, res: Response) => {
      res.send(`<h1>version ${version}</h1>`);
    });
    app.get('/account', (_req: Request, res: Response) => {
      res.cookie('session', 'abc');
      res.send('<h1>you</h1>');
    });

    const states: string[] = [];
    const get = async (path: string) => {
      states.push((await request(app).get(path)).headers['x-isr-cache']);
      await cache.idle();
    };
    await get('/p');
    clock.advanceSeconds(3);
    await get('/p');
    version = 2;
    clock.advanceSeconds(10);
    await get('/p');
    await get('/p');
    await get('/account');
    clock.advanceSeconds(1);
    await cache.revalidatePath('/p');
    expect(states).toEqual(['MISS', 'HIT', 'STALE', 'HIT', 'BYPASS']);

    expectStory(debugLines, [
      /^miss: \/p$/,
      /^store: \/p\b/,
      /^hit: \/p$/,
      /^stale: \/p \(older than 10s\)$/,
      /^regenerate: \/p started$/,
      /^store: \/p\b/,
      /^regenerate: \/p done\b/,
      /^hit: \/p$/,
      /^bypass: .*\/account \(set-cookie\)$/,
      /^revalidate: .*\/p.*\(stale, from api\)$/,
    ]);
  });
});
