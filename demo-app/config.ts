/**
 * The demo's settings, all from the environment, checked once at start-up so a typo fails
 * loudly instead of running a demo that does something else.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export interface DemoConfig {
  /** `PORT`: where the server listens (0 = any free port). */
  port: number;
  /** `ISR_SECRET`: the webhook secret, also the admin's password. */
  secret: string;
  /** `true` when `ISR_SECRET` was unset and the secret was made up at start-up. */
  secretGenerated: boolean;
  /** `REDIS_URL`: the shared store; the in-memory store when unset. */
  redisUrl: string | undefined;
  /** `CMS_LATENCY_MS`: how long each CMS fetch takes, so a MISS is visibly slower than a HIT. */
  cmsLatencyMs: number;
  /** `REVALIDATE`: seconds a page stays fresh. */
  revalidate: number;
  /** `DATA_DIR`: where the CMS keeps its JSON file. */
  dataDir: string;
  /** How many of the newest posts are prerendered at start-up (with `/` and `/about`). */
  prerenderPosts: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const secret = env.ISR_SECRET || randomBytes(24).toString('hex');
  return {
    port: whole(env, 'PORT', 3000),
    secret,
    secretGenerated: !env.ISR_SECRET,
    redisUrl: env.REDIS_URL || undefined,
    cmsLatencyMs: whole(env, 'CMS_LATENCY_MS', 300),
    revalidate: whole(env, 'REVALIDATE', 10),
    dataDir: path.resolve(env.DATA_DIR || path.join(__dirname, '..', '.demo-data')),
    prerenderPosts: 3,
  };
}

function whole(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(text)}`);
  }
  return value;
}
