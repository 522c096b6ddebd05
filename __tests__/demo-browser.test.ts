// The demo in a real browser: a headless Chromium (CHROME_PATH, else the usual places; see
// helpers/chromium.ts — .ci/run installs Debian's) driven by playwright-core. A visitor opens a post and the
// footer shows when it was generated and the cache state of that response (MISS, then HIT on
// reload); an editor changes the post's body in /admin; a second later the post shows the new
// text, from the cache, with a new generation time in the footer. Screenshots go to
// test-output/demo-browser/. Without Chromium this fails: it is never skipped.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { chromiumPath } from './helpers/chromium';
import { type DemoProcess, sleep, startDemoProcess } from './helpers/demo-process';

const OUTPUT = path.join(__dirname, '..', 'test-output', 'demo-browser');
jest.setTimeout(40_000);

let demo: DemoProcess;
let browser: Browser;
let context: BrowserContext;
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
});
afterAll(async () => {
  await context?.close();
  await browser?.close();
  await demo?.stop();
});

/** What the footer says: generation time (from the HTML) and cache state (from Server-Timing). */
async function footer(page: Page): Promise<{ generatedAt: number; state: string; text: string }> {
  const footerElement = page.locator('#isr-footer');
  return {
    generatedAt: Date.parse((await footerElement.locator('time').getAttribute('datetime')) ?? ''),
    state: (await page.locator('#isr-state').getAttribute('data-state')) ?? '(none)',
    text: ((await footerElement.textContent()) ?? '').replace(/\s+/g, ' ').trim(),
  };
}

test('open a post, edit it in /admin, reload: the new text, from the cache, with a new generation time', async () => {
  const slug = 'redis';
  expect(demo.prerendered.map((p) => p.path)).not.toContain(`/blog/${slug}`);
  const page = await context.newPage();
  const postUrl = `${demo.url}/blog/${slug}`;

  await page.goto(postUrl);
  const first = await footer(page);
  expect(first.state).toBe('MISS');
  expect(first.text).toMatch(
    /^Generated \d.* s ago\) by process \d+ · this response: MISS, served by process \d+$/,
  );
  const oldBody = (await page.locator('article .body').textContent()) ?? '';

  await page.reload();
  const second = await footer(page);
  expect(second.state).toBe('HIT');
  expect(second.generatedAt).toBe(first.generatedAt);

  await page.goto(`${demo.url}/admin/`);
  await page.getByRole('link', { name: 'Sharing the cache through Redis' }).click();
  await page.waitForURL(`${demo.url}/admin/posts/${slug}`);
  const newText = `Edited in the browser: ${Date.now()}.`;
  await page.locator('textarea[name="body"]').fill(`${newText}\n\nA second paragraph.`);
  const savedAt = Date.now();
  await page.getByRole('button', { name: 'Save and publish' }).click();
  await page.waitForURL(/\/admin\/\?done=saved&slug=redis&hook=ok$/);
  await expectText(page.getByRole('status'), /“redis” saved\. Webhook called for tag post-redis/);
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

async function expectText(locator: ReturnType<Page['locator']>, pattern: RegExp) {
  expect(await locator.textContent()).toMatch(pattern);
}
