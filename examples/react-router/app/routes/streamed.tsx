import { Suspense } from 'react';
import { Await, type LoaderFunctionArgs, useLoaderData } from 'react-router';
import { type Context, nextRender, sharedPageHeaders } from '../context';

export const headers = () => sharedPageHeaders;

/** The shell goes out at once; the comments follow in the same response when they resolve. */
export async function loader({ context }: LoaderFunctionArgs<Context>) {
  const posts = await context.posts();
  const comments = new Promise<string[]>((resolve) =>
    setTimeout(() => resolve(posts.map((post) => `A comment on ${post.title}`)), 300),
  );
  return { render: nextRender(), comments };
}

export default function Streamed() {
  const { render, comments } = useLoaderData<typeof loader>();
  return (
    <main>
      <h1>Streamed</h1>
      <p>render #{render}</p>
      <Suspense fallback={<p>Loading comments…</p>}>
        <Await resolve={comments}>
          {(list) => (
            <ul id="comments">
              {list.map((comment) => (
                <li key={comment}>{comment}</li>
              ))}
            </ul>
          )}
        </Await>
      </Suspense>
    </main>
  );
}
