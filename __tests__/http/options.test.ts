/**
 * Option validation: every impossible option makes `isr()` throw a TypeError at once, whose
 * message names the option, says what it must be and shows what it got — never a silent
 * fallback to the default. An explicit `undefined` keeps the default. `MemoryStore` checks
 * its own `maxSize`.
 */
import express from 'express';
import request from 'supertest';
import { type IsrOptions, isr, MemoryStore } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

/** [option, impossible value, how the message shows the value it got] */
const impossible: [keyof IsrOptions, unknown, string][] = [
  ['revalidate', -1, '-1'],
  ['revalidate', '10', '"10"'],
  ['revalidate', Number.NaN, 'NaN'],
  ['revalidate', Number.POSITIVE_INFINITY, 'Infinity'],
  ['revalidate', true, 'true'],
  ['maxSize', 0, '0'],
  ['maxSize', -5, '-5'],
  ['statuses', '200', '"200"'],
  ['statuses', [99], '[99]'],
  ['contentTypes', ['html'], '"html"'],
  ['contentTypes', 'text/html', '"text/html"'],
  ['ignoreQuery', [1], '[1]'],
  ['allowQuery', 'page', '"page"'],
  ['forwardHeaders', 'accept', '"accept"'],
  ['host', 'a b', '"a b"'],
  ['regenerateTimeout', 0, '0'],
  ['storeTimeout', '5', '"5"'],
  ['maxBodySize', -1, '-1'],
  ['compress', 'yes', '"yes"'],
  ['cacheControl', 'public', '"public"'],
  ['invalidateOnUnsafe', 'no', '"no"'],
  ['store', {}, '{}'],
  ['key', 'k', '"k"'],
  ['bypass', 1, '1'],
  ['onError', 1, '1'],
  ['logger', {}, '{}'],
  ['now', 5, '5'],
];

/** The TypeError `isr(options)` throws, or a failure when it throws none. */
function thrownBy(options: unknown): Error {
  try {
    const cache = isr(options as IsrOptions);
    void cache.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error(`isr(${String(options)}) did not throw`);
}

describe('impossible options throw a TypeError at isr() time', () => {
  test.each(impossible)('%s: %p', (option, value, shown) => {
    const error = thrownBy({ [option]: value });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain(option);
    expect(error.message).toMatch(/must be \S/);
    expect(error.message).toContain(shown);
  });

  test('a revalidate given as a string names what it got', () => {
    const error = thrownBy({ revalidate: '10' });
    expect(error.message).toMatch(/revalidate.*must be.*"10"/);
  });

  test.each([
    [5, '5'],
    ['fast', '"fast"'],
    [null, 'null'],
  ])('options that are not an object (%p) throw a TypeError', (options, shown) => {
    const error = thrownBy(options);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/options/);
    expect(error.message).toMatch(/object/);
    expect(error.message).toContain(shown);
  });

  test('an impossible option among valid ones is the one named', () => {
    const error = thrownBy({ revalidate: 30, maxSize: 1000, storeTimeout: -1 });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toContain('storeTimeout');
  });
});

describe('possible options are accepted', () => {
  test.each<[string, IsrOptions]>([
    ['no options', {}],
    ['revalidate: false', { revalidate: false }],
    ['statuses: [200, 404]', { statuses: [200, 404] }],
    ["contentTypes: ['*/*', 'text/*']", { contentTypes: ['*/*', 'text/*'] }],
    ['compress: 2048', { compress: 2048 }],
    ['compress: false', { compress: false }],
    ['cacheControl: false', { cacheControl: false }],
    ['cacheControl: a function', { cacheControl: () => 'public, max-age=5' }],
    ["host: 'www.example.com:8080'", { host: 'www.example.com:8080' }],
    ['store: a MemoryStore', { store: new MemoryStore({ maxSize: 1024 }) }],
  ])('%s', async (_label, options) => {
    const cache = isr(options);
    cleanups.push(() => cache.close());
    expect(typeof cache).toBe('function');
  });

  test('isr() with no argument at all', async () => {
    const cache = isr();
    cleanups.push(() => cache.close());
    expect(typeof cache).toBe('function');
  });
});

describe('an explicit undefined keeps the default', () => {
  test('revalidate: undefined is still 60 s', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: undefined });
    cleanups.push(() => cache.close());
    const app = express();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.send(`<h1>render ${renders}</h1>`);
    });

    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    clock.advanceSeconds(59);
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('HIT');
    clock.advanceSeconds(2);
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
  });

  test('statuses, contentTypes and forwardHeaders: undefined keep their defaults', async () => {
    const clock = fakeClock();
    const cache = isr({
      now: clock.now,
      statuses: undefined,
      contentTypes: undefined,
      forwardHeaders: undefined,
      ignoreQuery: undefined,
    });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/page', (req, res) => {
      res.vary('Accept-Language'); // it shows it: each language is its own variant
      res.send(`<p>${req.headers['accept-language']} ${req.headers.cookie ?? 'no cookie'}</p>`);
    });
    app.get('/json', (_req, res) => {
      res.json({ a: 1 });
    });
    app.get('/missing', (_req, res) => {
      res.status(404).send('<p>none</p>');
    });

    const page = await request(app).get('/page?utm_source=x').set('Accept-Language', 'de');
    expect(page.headers['x-isr-cache']).toBe('MISS');
    expect(page.text).toBe('<p>de no cookie</p>');
    expect((await request(app).get('/json')).headers['x-isr-cache']).toBe('BYPASS');
    expect((await request(app).get('/missing')).headers['x-isr-cache']).toBe('BYPASS');
    await cache.idle();
    const again = await request(app).get('/page').set('Accept-Language', 'de');
    expect(again.headers['x-isr-cache']).toBe('HIT');
  });
});

describe('MemoryStore', () => {
  test.each([
    [0, '0'],
    [-5, '-5'],
    ['big', '"big"'],
  ])('maxSize %p throws a TypeError naming maxSize', (maxSize, shown) => {
    expect(() => new MemoryStore({ maxSize: maxSize as number })).toThrow(TypeError);
    expect(() => new MemoryStore({ maxSize: maxSize as number })).toThrow(/maxSize/);
    expect(() => new MemoryStore({ maxSize: maxSize as number })).toThrow(shown);
  });

  test('a positive maxSize is accepted', () => {
    expect(new MemoryStore({ maxSize: 1024 }).maxSize).toBe(1024);
  });
});
