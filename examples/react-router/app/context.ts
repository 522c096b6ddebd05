/** What server.mjs passes to every loader (`getLoadContext`): the stand-in CMS. */
export interface Post {
  slug: string;
  title: string;
}

export interface Context {
  posts(): Promise<Post[]>;
}

/** The cache-control a CDN expects from a shared page, and the tag the webhook refreshes. */
export const sharedPageHeaders = {
  'Cache-Control': 's-maxage=60, stale-while-revalidate=3600',
  'Cache-Tag': 'posts',
};

let renders = 0;

/** Counts this process's renders, shown on pages so a replay can be told from a render. */
export function nextRender(): number {
  renders += 1;
  return renders;
}
