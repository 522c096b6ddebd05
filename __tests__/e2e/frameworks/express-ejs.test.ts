// examples/express-ejs, plain Express rendering EJS templates behind isr(), started with the
// command its README gives.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildPackageIfStale, withDistLock } from '../../helpers/built-package';
import { cleanupsAfterEach } from '../../helpers/cleanups';
import {
  BUILD_TIMEOUT,
  EXAMPLES,
  get,
  getOnceStored,
  runExampleAsDocumented,
} from '../../helpers/example-app';

const cleanups = cleanupsAfterEach();

beforeAll(() => withDistLock(buildPackageIfStale), BUILD_TIMEOUT);

test('the example runs with the command its README gives: MISS, then HIT, for each page', async () => {
  const readme = readFileSync(path.join(EXAMPLES, 'express-ejs', 'README.md'), 'utf8');
  expect(readme).toContain('node examples/express-ejs/server.mjs');
  const server = await runExampleAsDocumented('express-ejs');
  cleanups.push(server.stop);

  for (const [page, title] of [
    ['/', 'Posts'],
    ['/blog/hello', 'Hello, ISR'],
  ]) {
    const miss = await get(server.url(page));
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toContain(`<h1>${title}</h1>`);
    const hit = await getOnceStored(server.url(page));
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.body.equals(miss.body)).toBe(true);
    expect(hit.headers['cache-tag']).toContain('posts');
  }
  expect((await get(server.url('/blog/nope'))).status).toBe(404);
});
