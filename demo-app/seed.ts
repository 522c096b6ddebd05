/** The dozen posts the CMS starts with the first time it runs (oldest first). */
import type { Post } from './cms';

const seed: Omit<Post, 'published'>[] = [
  {
    slug: 'hello',
    title: 'Hello, ISR',
    date: '2025-01-06',
    topics: ['intro'],
    body: 'This page is rendered once, stored, and replayed to every visitor after that.\n\nThe first visitor waits for the CMS; everyone else gets a copy as fast as a static file.',
  },
  {
    slug: 'stale-while-revalidate',
    title: 'Stale while revalidate',
    date: '2025-01-13',
    topics: ['caching'],
    body: 'Past its revalidate window a page is still served at once, marked STALE, while a fresh copy renders in the background.\n\nNobody waits for a render, and nobody gets an error while a good page exists.',
  },
  {
    slug: 'on-demand-revalidation',
    title: 'On-demand revalidation',
    date: '2025-01-20',
    topics: ['caching', 'cms'],
    body: 'A webhook refreshes the pages that show a post the moment the post changes, instead of waiting for their window to run out.',
  },
  {
    slug: 'tags',
    title: 'One tag per post',
    date: '2025-01-27',
    topics: ['cms'],
    body: 'Every page that shows a post carries the tag post-<slug>: its own page, the home page, the topic pages.\n\nOne call with that tag refreshes them all.',
  },
  {
    slug: 'unpublishing',
    title: 'Unpublishing for good',
    date: '2025-02-03',
    topics: ['cms'],
    body: 'mode: expire means the old page must never be served again: the next visitor gets a fresh render, which for an unpublished post is a 404.',
  },
  {
    slug: 'prerendering',
    title: 'Prerendering at start-up',
    date: '2025-02-10',
    topics: ['performance'],
    body: 'The newest posts are rendered before the server listens, so even their first visitor gets a HIT.',
  },
  {
    slug: 'redis',
    title: 'Sharing the cache through Redis',
    date: '2025-02-17',
    topics: ['scaling'],
    body: 'Several processes share one Redis: a page rendered by one of them is a HIT on all the others.',
  },
  {
    slug: 'single-flight',
    title: 'One render at a time',
    date: '2025-02-24',
    topics: ['performance', 'scaling'],
    body: 'A hundred visitors asking for a cold page at the same moment cost one render: the others wait for it and get the same page.',
  },
  {
    slug: 'what-is-never-cached',
    title: 'What is never cached',
    date: '2025-03-03',
    topics: ['caching', 'security'],
    body: 'Responses that set a cookie, say private or no-store, or answer a request with Authorization belong to one person: they are passed through, never stored.',
  },
  {
    slug: 'compression',
    title: 'Compressed once',
    date: '2025-03-10',
    topics: ['performance'],
    body: 'Pages over a kilobyte are stored with br and gzip variants made once, when stored, not on every request.',
  },
  {
    slug: 'failures',
    title: 'When a regeneration fails',
    date: '2025-03-17',
    topics: ['caching'],
    body: 'If the CMS is down when a page regenerates, the last good page stays and keeps being served; the render is retried later.',
  },
  {
    slug: 'server-timing',
    title: 'Seeing the cache from the browser',
    date: '2025-03-24',
    topics: ['intro', 'performance'],
    body: 'The footer of every page shows when the page was generated and whether this response was a HIT, a STALE or a MISS, read from the Server-Timing header.',
  },
];

export function seedPosts(): Post[] {
  return seed.map((post) => ({ ...post, published: true }));
}
