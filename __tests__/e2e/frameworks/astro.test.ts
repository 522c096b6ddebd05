// Astro 5 (output 'server', @astrojs/node in middleware mode) behind isr():
// examples/astro, built in this run.
import { frameworkSuite } from '../../helpers/framework-suite';

describe('Astro 5 behind isr()', () => {
  frameworkSuite({
    name: 'astro',
    build: ['astro', ['build', '--root', 'examples/astro']],
    clientDir: 'dist/client',
  });
});
