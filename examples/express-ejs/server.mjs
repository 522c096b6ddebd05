// Plain Express with EJS templates, with express-isr in front of the routes.
// Run it as README.md says.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { isr, revalidateRouter } from 'express-isr';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

/** The stand-in CMS: read on every render, so an edit shows once a page is regenerated. */
const posts = async () => JSON.parse(await readFile(here('./posts.json'), 'utf8'));

const app = express();
app.set('view engine', 'ejs');
app.set('views', here('./views'));

const cache = isr({ revalidate: 60 });
app.use(cache); // first, before the routes it caches

const secret = process.env.ISR_SECRET ?? 'dev-only-secret-change-me-0123456789abcdef';
app.use('/api/revalidate', revalidateRouter(cache, { secret }));

app.get('/', async (_req, res) => {
  res.isr({ tags: ['posts'] });
  res.render('posts', { posts: await posts(), renderedAt: new Date().toISOString() });
});

app.get('/blog/:slug', async (req, res) => {
  const post = (await posts()).find((p) => p.slug === req.params.slug);
  if (post === undefined) {
    res.status(404).send('<h1>No such post</h1>');
    return;
  }
  res.isr({ tags: ['posts', `post-${post.slug}`] });
  res.render('post', { post, renderedAt: new Date().toISOString() });
});

const server = app.listen(Number(process.env.PORT ?? 3000), () => {
  console.log(`Express and EJS with express-isr on http://localhost:${server.address().port}`);
});
