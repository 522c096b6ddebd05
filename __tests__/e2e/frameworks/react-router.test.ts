// React Router 7 in framework mode (built with @react-router/dev, served with
// @react-router/express) behind isr(): examples/react-router, built in this run.
import { frameworkSuite } from '../../helpers/framework-suite';

describe('React Router 7 behind isr()', () => {
  frameworkSuite({
    name: 'react-router',
    build: ['react-router', ['build', 'examples/react-router']],
    clientDir: 'build/client',
  });
});
