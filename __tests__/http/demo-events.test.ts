// The demo's admin event stream (`GET /admin/events`, the live cache panel's feed) and its
// favicon, in process: the stream is Server-Sent Events behind the admin's password, never
// cached (BYPASS, no-store), sends the table at once, then an event when a page is missed and
// hit; when the client goes away, every listener it added is removed with `cache.off`.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDemoApp, type Demo } from '../../demo-app/app';
import { openCms } from '../../demo-app/cms';
import { loadConfig } from '../../demo-app/config';
import { waitFor } from '../helpers/time';

const SECRET = 'a-secret-for-the-events-test-0123456789';
const auth = { authorization: `Basic ${Buffer.from(`admin:${SECRET}`).toString('base64')}` };

let dataDir: string;
let demo: Demo;
let server: Server;
let url: string;
beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'express-isr-demo-events-'));
  const config = loadConfig({
    PORT: '0',
    ISR_SECRET: SECRET,
    DATA_DIR: dataDir,
    CMS_LATENCY_MS: '5',
    REVALIDATE: '60',
  });
  const cms = await openCms({ dir: config.dataDir, latencyMs: config.cmsLatencyMs });
  demo = createDemoApp(
    config,
    cms,
    () => url,
    () => {},
  );
  server = demo.app.listen(0);
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
// The spies a test puts on the shared demo's cache go even when its expect failed.
afterEach(() => {
  jest.restoreAllMocks();
});
afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await demo?.cache.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Reads an event stream, keeping everything received so far. */
function reader(body: ReadableStream<Uint8Array>) {
  const stream = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    /** Resolves with all the text once `pattern` is in it (rejects after 5 s). */
    async until(pattern: RegExp): Promise<string> {
      const deadline = Date.now() + 5000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`not in the stream: ${pattern}\n${text}`);
        const { value, done } = await stream.read();
        if (done) throw new Error(`the stream ended before ${pattern}\n${text}`);
        text += decoder.decode(value, { stream: true });
      }
      return text;
    },
  };
}

test('GET /admin/events streams the table, then an event for a MISS and a HIT; listeners are removed when the client leaves', async () => {
  const on = jest.spyOn(demo.cache, 'on');
  const off = jest.spyOn(demo.cache, 'off');
  const controller = new AbortController();
  const response = await fetch(`${url}/admin/events`, { headers: auth, signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('x-isr-cache')).toBe('BYPASS');
  const events = reader(response.body!);
  // The table first (the prerendered pages are not there: this app was not prerendered).
  await events.until(/^event: entries\ndata: \{"html":/m);

  expect((await fetch(`${url}/blog/hello`)).headers.get('x-isr-cache')).toBe('MISS');
  await events.until(/^event: cache\ndata: \{"type":"miss","at":\d+,"key":"\/blog\/hello"\}$/m);
  // Once it is stored, the table is sent again with the page in it.
  await events.until(/^event: entries\ndata: .*data-key=\\"\/blog\/hello\\"/m);
  expect((await fetch(`${url}/blog/hello`)).headers.get('x-isr-cache')).toBe('HIT');
  await events.until(
    /^event: cache\ndata: \{"type":"hit","at":\d+,"key":"\/blog\/hello","age":0\}$/m,
  );

  const added = on.mock.calls.map(([name, listener]) => [name, listener]);
  expect(added.map(([name]) => name).sort()).toEqual([
    'hit',
    'miss',
    'regenerate:error',
    'regenerate:start',
    'regenerate:success',
    'revalidate',
    'stale',
  ]);
  controller.abort();
  await waitFor('every listener removed', () => off.mock.calls.length >= added.length);
  expect(off.mock.calls.map(([name, listener]) => [name, listener])).toEqual(added);
});

test('the event stream wants the admin password', async () => {
  const response = await fetch(`${url}/admin/events`);
  expect(response.status).toBe(401);
  expect(response.headers.get('content-type')).not.toMatch(/event-stream/);
});

test('/favicon.ico is an icon, not a 404, and pages name their icon inline', async () => {
  const icon = await fetch(`${url}/favicon.ico`);
  expect(icon.status).toBe(200);
  expect(icon.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
  expect(await icon.text()).toMatch(/^<svg /);
  const page = await (await fetch(`${url}/about`)).text();
  expect(page).toContain('<link rel="icon" href="data:image/svg+xml,');
});
