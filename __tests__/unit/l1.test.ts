/**
 * The in-process copy (L1) in front of a shared store: it keeps a copy only when nothing
 * could have made that copy outdated between the read and the put — neither a restart of the
 * events nor another instance replacing that page (a read in flight when the other instance's
 * event arrives may hold the page it just replaced).
 */
import { L1 } from '../../lib/stores/l1';
import type { CacheEntry } from '../../lib/types';

function page(version: string): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/html' },
    body: Buffer.from(`<p>${version}</p>`),
    etag: `"${version}"`,
    generatedAt: 0,
    revalidate: 60,
    maxStale: false,
    staleIfError: false,
    tags: [],
    url: '/a',
    requestHeaders: {},
  };
}

describe('L1', () => {
  test('a copy read before another instance replaced the page is not kept', () => {
    const l1 = new L1(1024 * 1024);
    l1.setLive(true);
    const epoch = l1.epoch; // a lookup begins, reads v1 from the shared store…
    l1.replacedElsewhere('/a'); // …another instance stores v2 and says so…
    l1.put('/a', page('v1'), epoch); // …the lookup ends
    expect(l1.get('/a')).toBeUndefined();

    l1.put('/a', page('v2'), l1.epoch); // a lookup begun after the event keeps its copy
    expect((l1.get('/a') as CacheEntry).etag).toBe('"v2"');
  });

  test('a copy read before the events restarted is not kept; nothing is served while they are down', () => {
    const l1 = new L1(1024 * 1024);
    l1.setLive(true);
    const epoch = l1.epoch;
    l1.setLive(false);
    l1.put('/a', page('v1'), epoch);
    expect(l1.get('/a')).toBeUndefined();
    l1.setLive(true);
    l1.put('/a', page('v1'), epoch);
    expect(l1.get('/a')).toBeUndefined();
  });
});
