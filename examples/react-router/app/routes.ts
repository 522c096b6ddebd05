import { index, type RouteConfig, route } from '@react-router/dev/routes';

export default [
  index('routes/home.tsx'),
  route('streamed', 'routes/streamed.tsx'),
  route('account', 'routes/account.tsx'),
] satisfies RouteConfig;
