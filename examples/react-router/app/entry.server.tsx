// React Router's default server entry insists on `@react-router/node` among the
// `dependencies` of the nearest package.json (and would add `isbot` to it); here they are
// the repository's devDependencies, so the app brings its own: React's streaming renderer,
// the shell first and each suspended part as it resolves.
import { PassThrough } from 'node:stream';
import { createReadableStreamFromReadable } from '@react-router/node';
import { renderToPipeableStream } from 'react-dom/server';
import { type EntryContext, ServerRouter } from 'react-router';

/** How long a deferred loader value may take; React Router rejects it past this. */
export const streamTimeout = 5_000;

export default function handleRequest(
  request: Request,
  status: number,
  headers: Headers,
  routerContext: EntryContext,
) {
  return new Promise<Response>((resolve, reject) => {
    let shellRendered = false;
    const { pipe, abort } = renderToPipeableStream(
      <ServerRouter context={routerContext} url={request.url} />,
      {
        onShellReady() {
          shellRendered = true;
          const body = new PassThrough();
          headers.set('Content-Type', 'text/html; charset=utf-8');
          resolve(new Response(createReadableStreamFromReadable(body), { status, headers }));
          pipe(body);
        },
        onShellError: reject,
        onError(error) {
          status = 500;
          if (shellRendered) console.error(error);
        },
      },
    );
    // Past the loaders' own timeout, let React send what it has and close the stream.
    setTimeout(abort, streamTimeout + 1000).unref();
  });
}
