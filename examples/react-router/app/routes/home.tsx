import { type LoaderFunctionArgs, useLoaderData } from 'react-router';
import { type Context, nextRender, sharedPageHeaders } from '../context';

export const headers = () => sharedPageHeaders;

export async function loader({ context }: LoaderFunctionArgs<Context>) {
  return { posts: await context.posts(), render: nextRender() };
}

export default function Home() {
  const { posts, render } = useLoaderData<typeof loader>();
  return (
    <main>
      <h1>Posts</h1>
      <ul>
        {posts.map((post) => (
          <li key={post.slug}>{post.title}</li>
        ))}
      </ul>
      <p>render #{render}</p>
    </main>
  );
}
