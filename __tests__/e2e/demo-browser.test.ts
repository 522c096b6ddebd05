// The demo in a real browser: a headless Chromium (CHROME_PATH, else the usual places; see
// helpers/chromium.ts — .ci/run installs Debian's) driven by playwright-core. A visitor opens a post and the
// footer's badge shows the cache state of that response (a red MISS, then a green HIT on
// reload), how long the render took and how long this response took, and the page's age
// against its window; an editor changes the post's body in /admin; a second later the post
// shows the new text, from the cache, with a new generation time in the footer. Then the
// admin's live cache panel: it lists the cached pages, and a click on "Regenerate" updates the
// page's row over the event stream, without a reload. Screenshots go to
// test-output/demo-browser/. Without Chromium this fails: it is never skipped.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { chromiumPath } from '../helpers/chromium';
import { type DemoProcess, startDemoProcess } from '../helpers/demo-process';
import { sleep } from '../helpers/time';

const OUTPUT = path.join(__dirname, '..', '..', 'test-output', 'demo-browser');
jest.setTimeout(40_000);

let demo: DemoProcess;
let browser: Browser;
let context: BrowserContext;
const pageErrors: string[] = [];
beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  // Both are started at once; whichever started is kept for afterAll even when the other
  // failed, so a missing Chromium fails this suite instead of leaving the demo running (and
  // Jest waiting for it forever).
  const [started, launched] = await Promise.allSettled([
    startDemoProcess({ REVALIDATE: '60' }),
    // A missing browser fails this suite with what to install (the promise, not a throw, so
    // that the demo started beside it is still stopped).
    Promise.resolve().then(() =>
      chromium.launch({
        executablePath: chromiumPath(),
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      }),
    ),
  ]);
  if (started.status === 'fulfilled') demo = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  if (started.status === 'rejected') throw started.reason;
  if (launched.status === 'rejected') throw launched.reason;
  // The editor's password for /admin/ (HTTP Basic), answered when the admin asks for it.
  context = await browser.newContext({
    httpCredentials: { username: 'admin', password: demo.secret },
    viewport: { width: 900, height: 800 },
  });
  // A script error in a page (the badge's or the panel's) fails the test that caused it.
  context.on('page', (page) => page.on('pageerror', (error) => pageErrors.push(error.message)));
});
afterEach(() => {
  const errors = pageErrors.splice(0);
  expect(errors).toEqual([]);
});
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await demo?.stop();
});

/** What the footer says: generation time (from the HTML), the badge (from Server-Timing). */
async function footer(page: Page) {
  const footerElement = page.locator('#isr-footer');
  const badge = page.locator('#isr-state');
  const text = async (selector: string) =>
    ((await page.locator(selector).textContent()) ?? '').replace(/\s+/g, ' ').trim();
  return {
    generatedAt: Date.parse((await footerElement.locator('time').getAttribute('datetime')) ?? ''),
    state: (await badge.getAttribute('data-state')) ?? '(none)',
    badge: await text('#isr-state'),
    colour: await badge.evaluate(
      (element) => (globalThis as any).getComputedStyle(element).backgroundColor,
    ),
    timing: await text('#isr-timing'),
    age: await text('#isr-age-text'),
    generated: await text('#isr-footer .isr-generated'),
  };
}

/** The badge's colours (views.ts), as getComputedStyle gives them. */
const RED = 'rgb(180, 35, 24)';
const GREEN = 'rgb(26, 127, 55)';
const MS = String.raw`\d+(\.\d)? ms`;

test('open a post, edit it in /admin, reload: the new text, from the cache, with a new generation time', async () => {
  const slug = 'redis';
  expect(demo.prerendered.map((p) => p.path)).not.toContain(`/blog/${slug}`);
  const page = await context.newPage();
  const postUrl = `${demo.url}/blog/${slug}`;

  // Every answer the page asks for, to see that nothing is a 404 (the favicon was).
  const notFound: string[] = [];
  page.on('response', (response) => {
    if (response.status() === 404) notFound.push(response.url());
  });

  await page.goto(postUrl);
  const first = await footer(page);
  expect(first.state).toBe('MISS');
  expect(first.badge).toBe('MISS');
  expect(first.colour).toBe(RED);
  expect(first.timing).toMatch(new RegExp(`^rendered in ${MS} · served in ${MS}$`));
  // The footer counts the seconds since the page loaded: a busy machine may read it a second on.
  expect(first.age).toMatch(/^age [0-2] s of 60 s$/);
  expect(first.generated).toMatch(/^Generated \d.* by process \d+, served by process \d+$/);
  const oldBody = (await page.locator('article .body').textContent()) ?? '';
  await page.screenshot({ path: path.join(OUTPUT, 'post-miss.png') });

  await page.reload();
  const second = await footer(page);
  expect(second.state).toBe('HIT');
  expect(second.badge).toBe('HIT');
  expect(second.colour).toBe(GREEN);
  expect(second.generatedAt).toBe(first.generatedAt);
  // The render's time is baked into the page (the same on a replay); the response's is not.
  expect(second.timing).toMatch(new RegExp(`^rendered in ${MS} · served in ${MS}$`));
  expect(second.timing.split(' · ')[0]).toBe(first.timing.split(' · ')[0]);
  expect(second.age).toMatch(/^age \d+ s of 60 s$/);
  await page.screenshot({ path: path.join(OUTPUT, 'post-hit.png') });
  expect(notFound).toEqual([]);

  await page.goto(`${demo.url}/admin/`);
  await page.getByRole('link', { name: 'Sharing the cache through Redis' }).click();
  await page.waitForURL(`${demo.url}/admin/posts/${slug}`);
  const newText = `Edited in the browser: ${Date.now()}.`;
  await page.locator('textarea[name="body"]').fill(`${newText}\n\nA second paragraph.`);
  const savedAt = Date.now();
  await page.getByRole('button', { name: 'Save and publish' }).click();
  await page.waitForURL(/\/admin\/\?done=saved&slug=redis&hook=ok$/);
  await expectText(
    page.getByRole('status').first(),
    /^“Sharing the cache through Redis” saved\. Webhook called for tag post-redis/,
  );
  await page.screenshot({ path: path.join(OUTPUT, 'admin-after-save.png') });

  // "Live within a second": one visit, a second after saving, already gets the new page.
  await sleep(savedAt + 1000 - Date.now());
  await page.goto(postUrl);
  const body = (await page.locator('article .body').textContent()) ?? '';
  expect(body).toContain(newText);
  expect(body).toContain('A second paragraph.');
  expect(body).not.toContain(oldBody);
  const after = await footer(page);
  expect(after.generatedAt).toBeGreaterThan(first.generatedAt);
  // Re-rendered ahead of the visitor, and the admin's Basic credentials are not sent to the
  // blog's pages (they would make them BYPASS the cache).
  expect(after.state).toBe('HIT');
  await page.screenshot({ path: path.join(OUTPUT, 'post-after-edit.png'), fullPage: true });
  await page.close();
});

test('the admin\'s live cache panel lists the pages, and "Regenerate" updates a row without a reload', async () => {
  const visitor = await context.newPage();
  await visitor.goto(`${demo.url}/blog/hello`);
  expect((await footer(visitor)).state).toBe('MISS');

  const admin = await context.newPage();
  await admin.goto(`${demo.url}/admin/`);
  const panel = admin.locator('#cache-panel');
  await admin.waitForFunction(
    () => (globalThis as any).document.getElementById('cache-panel')?.dataset.live === 'on',
  );
  expect(await admin.locator('#cache-live').textContent()).toBe('live');
  // The admin itself is never cached: its own badge says so.
  expect((await footer(admin)).state).toBe('BYPASS');
  const row = panel.locator('tr[data-key="/blog/hello"]');
  await row.waitFor();
  expect(await row.locator('.entry-state').textContent()).toBe('fresh');
  expect(await row.locator('td').nth(3).textContent()).toBe('post-hello');
  const before = await row.getAttribute('data-generated-at');

  // A page visited in another tab turns up in the panel by itself.
  await visitor.goto(`${demo.url}/blog/tags`);
  await panel.locator('tr[data-key="/blog/tags"]').waitFor();
  await admin.evaluate(() => {
    (globalThis as any).stillHere = true;
  });

  await admin.getByLabel('Page or tag').fill('/blog/hello');
  await admin.getByRole('button', { name: 'Regenerate' }).click();
  await expectEventually(
    admin.locator('#revalidate-result'),
    /^Webhook answered: regenerate for \/blog\/hello\.$/,
  );
  // The row is replaced over the event stream once the regeneration is stored.
  await admin.waitForFunction(
    (old) =>
      (globalThis as any).document
        .querySelector('tr[data-key="/blog/hello"]')
        ?.getAttribute('data-generated-at') !== old,
    before,
  );
  expect(Date.parse((await row.getAttribute('data-generated-at')) ?? '')).toBeGreaterThan(
    Date.parse(before ?? ''),
  );
  expect(await row.locator('.entry-state').textContent()).toBe('fresh');
  expect(await row.locator('td').nth(4).textContent()).toMatch(/in \d+ ms$/);
  const log = admin.locator('#cache-log');
  await expectEventually(log, /regenerate:success \/blog\/hello · in \d+ ms/);
  expect(await log.textContent()).toMatch(
    /revalidate \/blog\/hello · mode regenerate, from webhook/,
  );
  expect(await log.textContent()).toMatch(/miss \/blog\/tags · rendering/);
  expect(await admin.evaluate(() => (globalThis as any).stillHere)).toBe(true);
  await panel.screenshot({ path: path.join(OUTPUT, 'admin-cache-panel.png') });
  await visitor.close();
  await admin.close();
});

/** Waits (Playwright's own polling, no sleeps) until the element's text matches. */
async function expectEventually(locator: ReturnType<Page['locator']>, pattern: RegExp) {
  await locator
    .page()
    .waitForFunction(({ element, source }) => new RegExp(source).test(element?.textContent ?? ''), {
      element: await locator.elementHandle(),
      source: pattern.source,
    });
}

async function expectText(locator: ReturnType<Page['locator']>, pattern: RegExp) {
  expect(await locator.textContent()).toMatch(pattern);
}
