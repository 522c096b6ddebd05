import type { Engine } from '../engine';
import type { BreakerState } from '../stores/guarded';
import { withTimeout } from '../timeout';

/** A render or regeneration under way, on this instance or another: `cache.health()`. */
export interface InFlightRender {
  /** The page's URL (its cache key without deploy version and variant). */
  url: string;
  /** The cache key rendered, as the store names it. */
  key: string;
  /** The `instanceId` rendering it (`unknown` for a lease taken by an older version). */
  instance: string;
  /** When it started (ISO 8601), when known. */
  since?: string;
}

/** What `cache.health()` and `GET /health` on the revalidate router answer. */
export interface HealthReport {
  /**
   * `ok` when the store answered now, else `degraded`: the instance still serves (it fails
   * open, rendering without the store), so the router answers 200 either way unless asked
   * `?strict=1` (then 503).
   */
  status: 'ok' | 'degraded';
  /** This process's `instanceId`. */
  instance: string;
  store: {
    kind: 'memory' | 'keyv' | 'redis';
    /** Whether it answered a PING (Redis) or a GET (other Keyv stores) within `storeTimeout`. */
    reachable: boolean;
    /** How long that took, in ms (to 0.01 ms); absent when it did not answer. */
    latencyMs?: number;
    /** Why it did not answer. */
    error?: string;
  };
  /** The Redis pub/sub link that keeps L1 coherent; `null` without one (no Redis, or `l1: false`). */
  pubsub: { connected: boolean } | null;
  /** The circuit breaker in front of a remote store; `null` for the memory store. */
  breaker: BreakerState | null;
  /** The in-process copy in front of Redis. */
  l1:
    | { enabled: false }
    | { enabled: true; serving: boolean; size: number; entries: number; limit: number };
  /**
   * Renders and regenerations in flight: across every instance (`scope: 'fleet'`, from the
   * Redis leases) or in this process (`'process'`: no Redis lease to read). `truncated` when
   * there may be more than listed; `error` when they could not be read.
   */
  inFlight: {
    scope: 'fleet' | 'process';
    renders: InFlightRender[];
    truncated: boolean;
    error?: string;
  };
}

/** Most in-flight renders listed. */
const IN_FLIGHT_LIMIT = 100;
/** The longest the in-flight listing may take, in ms: health is asked often, and must answer. */
const IN_FLIGHT_BUDGET_MS = 2000;

/**
 * This instance's view of the store and of the fleet, measured now: the store answers a ping
 * within `storeTimeout` or is reported unreachable; nothing here waits longer than
 * `storeTimeout` for the ping and `IN_FLIGHT_BUDGET_MS` for the listing, run side by side.
 */
export async function health(engine: Engine): Promise<HealthReport> {
  const { probe, options } = engine;
  // The pub/sub link starts with the first request; a health check may come first.
  engine.start();
  const [store, inFlight] = await Promise.all([ping(engine), listInFlight(engine)]);
  const l1 = probe.l1;
  return {
    status: store.reachable ? 'ok' : 'degraded',
    instance: options.instanceId,
    store,
    pubsub: l1 === undefined ? null : { connected: l1.serving },
    breaker: probe.guarded?.breaker ?? null,
    l1:
      l1 === undefined
        ? { enabled: false }
        : {
            enabled: true,
            serving: l1.serving,
            size: l1.size.bytes,
            entries: l1.size.entries,
            limit: l1.size.limit,
          },
    inFlight,
  };
}

async function ping(engine: Engine): Promise<HealthReport['store']> {
  const { probe, options } = engine;
  const started = process.hrtime.bigint();
  try {
    await withTimeout(
      probe.ping(),
      options.storeTimeout,
      `no answer within ${options.storeTimeout} ms (storeTimeout)`,
    );
    const latencyMs = Number(process.hrtime.bigint() - started) / 1e6;
    return { kind: probe.kind, reachable: true, latencyMs: Math.round(latencyMs * 100) / 100 };
  } catch (error) {
    return {
      kind: probe.kind,
      reachable: false,
      error: String((error as Error)?.message ?? error),
    };
  }
}

async function listInFlight(engine: Engine): Promise<HealthReport['inFlight']> {
  const { probe, options } = engine;
  const { scope } = probe.inFlight;
  try {
    const { holders, truncated } = await probe.inFlight.list(
      IN_FLIGHT_LIMIT,
      options.storeTimeout,
      IN_FLIGHT_BUDGET_MS,
    );
    const renders = holders.map((holder) => ({
      // Redacted as debug lines are (README, "Debugging"): a URL may carry a token, and this
      // answer is polled, logged and kept by monitoring.
      url: engine.redactor.redact(holder.url),
      key: engine.redactor.redact(holder.key),
      instance: holder.instance,
      ...(holder.since === undefined ? {} : { since: new Date(holder.since).toISOString() }),
    }));
    return { scope, renders, truncated };
  } catch (error) {
    return {
      scope,
      renders: [],
      truncated: true,
      error: String((error as Error)?.message ?? error),
    };
  }
}
