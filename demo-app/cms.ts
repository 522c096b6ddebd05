/**
 * A stand-in for a headless CMS: posts in a JSON file under the data directory, seeded on
 * first start, read on every fetch (so an edit by hand or by another process is seen at once)
 * and written atomically (a temporary file renamed over the old one, so a reader never sees
 * half a file). Every call waits `latencyMs`, like a network round trip to a real CMS, so a
 * render (MISS) is visibly slower than a cached page (HIT).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { seedPosts } from './seed';

export interface Post {
  slug: string;
  title: string;
  /** Plain text; paragraphs are separated by a blank line. */
  body: string;
  /** Day of publication, `YYYY-MM-DD`. */
  date: string;
  /** What the post is about; each topic has its page at `/topics/:topic`. */
  topics: string[];
  published: boolean;
}

export type PostChanges = Partial<Pick<Post, 'title' | 'body' | 'published'>>;

export interface Cms {
  /** Published posts, newest first. */
  listPosts(): Promise<Post[]>;
  /** A published post, or `undefined`. */
  findPost(slug: string): Promise<Post | undefined>;
  /** Every post, published or not, newest first: for the admin. */
  allPosts(): Promise<Post[]>;
  /** Applies `changes` to a post; resolves with the post, or `undefined` if there is none. */
  updatePost(slug: string, changes: PostChanges): Promise<Post | undefined>;
  /** The JSON file the posts live in. */
  readonly file: string;
}

export async function openCms(options: { dir: string; latencyMs: number }): Promise<Cms> {
  const file = path.join(options.dir, 'posts.json');
  await mkdir(options.dir, { recursive: true });
  try {
    await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await save(file, seedPosts());
  }

  const fetchAll = async (): Promise<Post[]> => {
    await delay(options.latencyMs);
    return load(file);
  };
  // Writes from this process go one after the other, so two saves cannot lose each other.
  let writing: Promise<unknown> = Promise.resolve();

  return {
    file,
    async listPosts() {
      return newestFirst((await fetchAll()).filter((post) => post.published));
    },
    async findPost(slug) {
      return (await fetchAll()).find((post) => post.slug === slug && post.published);
    },
    async allPosts() {
      return newestFirst(await fetchAll());
    },
    updatePost(slug, changes) {
      const update = writing.then(async () => {
        const posts = await fetchAll();
        const post = posts.find((p) => p.slug === slug);
        if (post === undefined) return undefined;
        Object.assign(post, changes);
        await save(file, posts);
        return post;
      });
      writing = update.catch(() => {});
      return update;
    },
  };
}

async function load(file: string): Promise<Post[]> {
  const data = JSON.parse(await readFile(file, 'utf8')) as { posts?: unknown };
  if (!Array.isArray(data.posts)) throw new Error(`${file}: expected { "posts": [...] }`);
  return data.posts as Post[];
}

async function save(file: string, posts: Post[]): Promise<void> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify({ posts }, null, 2)}\n`);
  await rename(temporary, file);
}

function newestFirst(posts: Post[]): Post[] {
  return [...posts].sort((a, b) => b.date.localeCompare(a.date));
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
