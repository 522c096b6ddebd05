/**
 * A stand-in for a CMS: a few posts in memory and a fetch delay, so that the difference
 * between a render (MISS, ~300 ms) and a cached page (HIT, ~1 ms) is visible.
 */
export interface Post {
  slug: string;
  title: string;
  body: string;
  tags: string[];
}

const posts: Post[] = [
  {
    slug: 'hello',
    title: 'Hello, ISR',
    body: 'This page is rendered once and then served from the cache.',
    tags: ['intro'],
  },
  {
    slug: 'stale-while-revalidate',
    title: 'Stale while revalidate',
    body: 'Past its window the old page is served at once while a fresh one renders in the background.',
    tags: ['caching'],
  },
  {
    slug: 'on-demand',
    title: 'On-demand revalidation',
    body: 'A CMS webhook can refresh a page the moment its content changes.',
    tags: ['caching', 'cms'],
  },
];

const latencyMs = Number(process.env.CMS_LATENCY_MS ?? 300);

function delay<T>(value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, latencyMs, value));
}

export function listPosts(): Promise<Post[]> {
  return delay(posts.map((post) => ({ ...post })));
}

export function findPost(slug: string): Promise<Post | undefined> {
  const post = posts.find((p) => p.slug === slug);
  return delay(post && { ...post });
}
