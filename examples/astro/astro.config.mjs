import node from '@astrojs/node';
import { defineConfig } from 'astro/config';

export default defineConfig({
  output: 'server',
  // An Express (or Connect) handler instead of Astro's own server: see server.mjs.
  adapter: node({ mode: 'middleware' }),
  // Files rather than inline tags, so the page has real assets for the cache to pass through.
  build: { inlineStylesheets: 'never' },
  vite: { build: { assetsInlineLimit: 0 } },
});
