/**
 * How the CMS tells the site that content changed: an HTTP POST to the site's revalidate
 * webhook with the shared secret, exactly what a headless CMS (Contentful, Sanity, Strapi…)
 * is configured to send. The admin goes through HTTP rather than calling
 * `cache.revalidateTag()` directly, so the demo exercises the same path a real CMS would.
 */
import type { RevalidateMode } from '../lib';

export interface RevalidateCall {
  paths?: string[];
  tags?: string[];
  mode: RevalidateMode;
}

export interface RevalidateAnswer {
  revalidated: true;
  paths: string[];
  tags: string[];
  mode: RevalidateMode;
  now: number;
}

export async function callRevalidateWebhook(
  url: string,
  secret: string,
  call: RevalidateCall,
): Promise<RevalidateAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(call),
    signal: AbortSignal.timeout(5000),
  });
  const answer = (await response.json()) as RevalidateAnswer | { error: string };
  if (!response.ok || !('revalidated' in answer)) {
    throw new Error(`the webhook answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  return answer;
}
