/**
 * README, "Running many instances": the shared tag index keeps at most a bound of pages per
 * tag (those that expire last), never lists a page past its life, and each tag's set lives as
 * long as the longest-lived page in it plus a minute. Its own namespace on the local Redis.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import Keyv from 'keyv';
import { redisLinkOf } from '../../lib/stores/redis/client';
import { indexedWalk } from '../../lib/stores/redis/indexed-walk';
import { RedisPageIndex } from '../../lib/stores/redis/page-index';
import type { IsrStore } from '../../lib/stores/types';
import type { StoredValue } from '../../lib/types';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock } from '../helpers/time';

const cleanups = cleanupsAfterEach();

test('a tag keeps the pages that expire last, up to its bound; expired ones are never listed; the set outlives its pages by a minute', async () => {
  const ns = uniqueNamespace('page-index');
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  cleanups.push(async () => {
    await admin.del(`${ns}::isr-page-index:tag:t`);
    admin.destroy();
    await keyv.disconnect();
  });
  const link = redisLinkOf(keyv as unknown as IsrStore);
  if (link === undefined) throw new Error('no Redis link');
  const clock = fakeClock();
  const guard = async <T>(call: () => Promise<T>) => ({ ok: true as const, value: await call() });
  const index = new RedisPageIndex(link, guard, clock.now, undefined, 3);

  const minute = 60_000;
  for (const [path, minutes] of [
    ['/a', 5],
    ['/b', 1],
    ['/c', 10],
    ['/d', 3],
    ['/e', 7],
  ] as const) {
    await index.add({ key: path, variantKey: path }, ['tag:t'], minutes * minute);
  }
  const keys = async () =>
    ((await index.pagesWith(['tag:t'])) ?? []).map((page) => page.variantKey).sort();
  // Bound 3: /b (1 min) and /d (3 min), which expire first, were dropped.
  expect(await keys()).toEqual(['/a', '/c', '/e']);
  const ttl = await admin.pTTL(`${ns}::isr-page-index:tag:t`);
  expect(ttl).toBeGreaterThan(11 * minute - 5000);
  expect(ttl).toBeLessThanOrEqual(11 * minute);

  // Six minutes on, /a (5 min) is past its life: not listed, and dropped at the next write.
  clock.advance(6 * minute);
  expect(await keys()).toEqual(['/c', '/e']);
  await index.add({ key: '/f', variantKey: '/f\0accept-language=fr' }, ['tag:t'], minute);
  expect(await index.pagesWith(['tag:t'])).toEqual(
    expect.arrayContaining([{ key: '/f', variantKey: '/f\0accept-language=fr' }]),
  );
  expect(await admin.zCard(`${ns}::isr-page-index:tag:t`)).toBe(3);
});

test('query variants have a set of their own per tag: a flood of them never pushes a page out', async () => {
  const ns = uniqueNamespace('page-index-variants');
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  cleanups.push(async () => {
    await admin.del([`${ns}::isr-page-index:tag:t`, `${ns}::isr-query-index:tag:t`]);
    admin.destroy();
    await keyv.disconnect();
  });
  const link = redisLinkOf(keyv as unknown as IsrStore);
  if (link === undefined) throw new Error('no Redis link');
  const clock = fakeClock();
  const guard = async <T>(call: () => Promise<T>) => ({ ok: true as const, value: await call() });
  const index = new RedisPageIndex(link, guard, clock.now, undefined, 3, 2);

  const minute = 60_000;
  await index.add({ key: '/a', variantKey: '/a' }, ['tag:t'], 5 * minute);
  await index.add({ key: '/b', variantKey: '/b' }, ['tag:t'], 5 * minute);
  // Twenty variants, each living longer than the pages: in one set, they would push both out.
  for (let i = 0; i < 20; i += 1) {
    await index.add({ key: `/x?r=${i}`, variantKey: `/x?r=${i}` }, ['tag:t'], (10 + i) * minute);
  }
  const keys = ((await index.pagesWith(['tag:t'])) ?? []).map((page) => page.variantKey).sort();
  expect(keys).toEqual(['/a', '/b', '/x?r=18', '/x?r=19']);
  expect(await admin.zCard(`${ns}::isr-page-index:tag:t`)).toBe(2);
  expect(await admin.zCard(`${ns}::isr-query-index:tag:t`)).toBe(2);
  expect(await admin.pTTL(`${ns}::isr-query-index:tag:t`)).toBeGreaterThan(29 * minute);
  // The listing reads both: the pages first, then the variants.
  expect((await index.list('tag:t', 0, 10, 'variants'))?.map((page) => page.key)).toEqual([
    '/x?r=18',
    '/x?r=19',
  ]);
});

test('entries() on Redis reads the index (the store is not walked), and walks the store only when the index has nothing', async () => {
  const ns = uniqueNamespace('page-index-walk');
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  cleanups.push(async () => {
    await admin.del([`${ns}::isr-page-index:layout:/blog`, `${ns}::isr-query-index:layout:/blog`]);
    admin.destroy();
    await keyv.disconnect();
  });
  const link = redisLinkOf(keyv as unknown as IsrStore);
  if (link === undefined) throw new Error('no Redis link');
  const clock = fakeClock();
  const guard = async <T>(call: () => Promise<T>) => ({ ok: true as const, value: await call() });
  const index = new RedisPageIndex(link, guard, clock.now, undefined);
  let scans = 0;
  async function* scan(): AsyncGenerator<[string, StoredValue]> {
    scans += 1;
    yield ['/walked', { walked: true } as unknown as StoredValue];
  }
  const get = async (key: string) => ({ key }) as unknown as StoredValue;
  const listed = async (prefix: string) => {
    const keys: string[] = [];
    for await (const [key] of indexedWalk(index, prefix, get, scan)) keys.push(key);
    return keys;
  };

  expect(await listed('/blog/')).toEqual(['/walked']);
  expect(scans).toBe(1);
  await index.add({ key: '/blog/a', variantKey: '/blog/a' }, ['layout:/blog'], 60_000);
  await index.add({ key: '/blog/b?p=2', variantKey: '/blog/b?p=2' }, ['layout:/blog'], 60_000);
  expect(await listed('/blog/')).toEqual(['/blog/a', '/blog/b?p=2']);
  expect(scans).toBe(1);
});
