import { type LoaderFunctionArgs, useLoaderData } from 'react-router';

/** One visitor's page: never shared, by a CDN or by the cache in front of the app. */
export const headers = () => ({ 'Cache-Control': 'private, no-cache' });

export function loader({ request }: LoaderFunctionArgs) {
  const cookie = request.headers.get('cookie') ?? '';
  const user = /(?:^|;\s*)user=([^;]*)/.exec(cookie)?.[1];
  return { user: user === undefined ? 'guest' : decodeURIComponent(user) };
}

export default function Account() {
  const { user } = useLoaderData<typeof loader>();
  return <h1>Hello, {user}</h1>;
}
