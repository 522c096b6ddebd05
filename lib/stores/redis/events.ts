import { randomUUID } from 'node:crypto';
import { withTimeout } from '../../timeout';
import type { RedisLink, RedisSubscriber } from './client';

/** What instances tell each other so that their in-process copies (L1) stay coherent. */
export type CacheEvent =
  | { type: 'bump'; tags: string[]; kind: 'stale' | 'expire'; at: number }
  | { type: 'set'; key: string }
  | { type: 'delete'; key: string };

type Wire = CacheEvent & { from: string };

/** How often the subscription proves it is alive, and how late a proof may be. */
const HEARTBEAT_MS = 1000;
const HEARTBEAT_GRACE_MS = 2500;

/**
 * Redis pub/sub between the instances sharing a store, on a connection of its own
 * (SUBSCRIBE on the command connection would block its GETs). `live` is true only while the
 * subscription is proven to work: each instance publishes a heartbeat to itself, and a
 * heartbeat that does not come back in time, a connection error or a reconnect makes it
 * false. Whoever relies on the events (L1) must stop trusting them meanwhile.
 */
export class RedisEvents {
  readonly id = randomUUID();
  private subscriber: RedisSubscriber | undefined;
  private lastBeat = 0;
  private liveState = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  /** A connection attempt under way, which `close()` waits for. */
  private connecting: Promise<void> | undefined;
  private readonly channel: string;

  constructor(
    private readonly link: RedisLink,
    private readonly timeout: number,
    private readonly handlers: {
      onEvent: (event: CacheEvent) => void;
      /** Called with `false` the moment events may have been missed, `true` once they flow again. */
      onLive: (live: boolean) => void;
      onFailure: (error: unknown) => void;
    },
  ) {
    this.channel = `${link.prefix}isr-events`;
  }

  /** Starts the heartbeat, which also (re)connects the subscriber whenever it has none. */
  start(): void {
    if (this.heartbeat !== undefined || this.closed) return;
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    this.beat();
  }

  private async connect(): Promise<void> {
    let subscriber: RedisSubscriber | undefined;
    try {
      const client = await withTimeout(
        this.link.client(),
        this.timeout,
        'pub/sub: no Redis connection',
      );
      if (this.closed) return; // close() ran meanwhile: open nothing
      subscriber = client.duplicate();
      this.subscriber = subscriber;
      subscriber.on('error', (error) => {
        this.setLive(false);
        this.handlers.onFailure(error);
      });
      subscriber.on('end', () => this.setLive(false));
      subscriber.on('reconnecting', () => this.setLive(false));
      await withTimeout(subscriber.connect(), this.timeout * 4, 'pub/sub: connect timed out');
      // Our own connection: like our timers, it never keeps the process alive by itself.
      subscriber.unref?.();
      await withTimeout(
        subscriber.subscribe(this.channel, (message) => this.receive(message)),
        this.timeout * 4,
        'pub/sub: subscribe timed out',
      );
      if (this.closed) {
        // close() ran while we were connecting: this connection must not outlive it.
        this.subscriber = undefined;
        await shutDown(subscriber);
        return;
      }
      this.beat(); // prove the subscription now rather than at the next heartbeat
    } catch (error) {
      this.handlers.onFailure(error);
      // Start over on the next heartbeat with a fresh connection.
      if (this.subscriber === subscriber) this.subscriber = undefined;
      if (subscriber !== undefined) await shutDown(subscriber);
    }
  }

  async publish(event: CacheEvent): Promise<void> {
    const client = await this.link.client();
    await withTimeout(
      client.publish(this.channel, JSON.stringify({ ...event, from: this.id })),
      this.timeout,
      'publish timed out',
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.setLive(false);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    // Shut the subscriber first: that also cuts short a connection attempt still under way.
    if (subscriber !== undefined) await shutDown(subscriber);
    await this.connecting;
  }

  private beat(): void {
    if (this.closed) return;
    if (this.subscriber === undefined && this.connecting === undefined) {
      this.connecting = this.connect().finally(() => {
        this.connecting = undefined;
      });
    }
    if (this.liveState && Date.now() - this.lastBeat > HEARTBEAT_GRACE_MS) this.setLive(false);
    this.link
      .client()
      .then((client) =>
        withTimeout(
          client.publish(this.channel, JSON.stringify({ type: 'beat', from: this.id })),
          this.timeout,
          'heartbeat timed out',
        ),
      )
      .catch(() => this.setLive(false));
  }

  private receive(message: string): void {
    let wire: Wire | { type: 'beat'; from: string };
    try {
      wire = JSON.parse(message);
    } catch {
      return;
    }
    if (wire.type === 'beat') {
      if (wire.from === this.id) {
        this.lastBeat = Date.now();
        this.setLive(true);
      }
      return;
    }
    if (wire.from !== this.id) this.handlers.onEvent(wire);
  }

  private setLive(live: boolean): void {
    if (live === this.liveState || (live && this.closed)) return;
    this.liveState = live;
    this.handlers.onLive(live);
  }
}

/**
 * Closes a subscriber whatever state it is in: gracefully when ready, and otherwise destroyed,
 * which also stops node-redis from reconnecting (a pending reconnect would keep the process alive).
 */
async function shutDown(subscriber: RedisSubscriber): Promise<void> {
  try {
    if (subscriber.isReady && subscriber.close) await subscriber.close();
    else if (subscriber.isReady && subscriber.quit) await subscriber.quit();
    else subscriber.destroy?.();
  } catch {
    try {
      subscriber.destroy?.();
    } catch {
      // already closed
    }
  }
}
