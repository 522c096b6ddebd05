import type { Config } from '@react-router/dev/config';

export default {
  ssr: true,
  // `.mjs` because the repository's package.json has no `"type": "module"`, and the server
  // build is an ES module that server.mjs imports.
  serverBuildFile: 'index.mjs',
  // React Router 8's behaviour, where it changes nothing here. `v8_middleware` stays off:
  // it would make the load context that server.mjs passes a RouterContextProvider.
  future: {
    v8_splitRouteModules: true,
    v8_viteEnvironmentApi: true,
    v8_passThroughRequests: true,
    v8_trailingSlashAwareDataRequests: true,
  },
} satisfies Config;
