import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import {
  codingProblem,
  responseUncacheableReason,
  unkeyedHeaderReason,
  varyNames,
} from '../request/eligibility';
import type { IsrResponse } from '../types';
import { type Captured, type CaptureOptions, captureResponse } from './capture';
import type { EntryContext } from './entry';
import { installResponseConfig, type PagePolicy, responseConfig } from './response-config';
import { syntheticExchange } from './synthetic-request';

/** What watches the capture as it goes (see `CaptureOptions`): a MISS relays it to its visitor. */
export type CaptureHooks = Omit<CaptureOptions, 'maxBodySize' | 'abandonAfterMs'>;

/**
 * One render of a page for the store, on a request of the cache's own (`syntheticExchange`):
 * its response is captured, its policy read (`res.isr()`, its caching headers, the options),
 * judged (may it be stored?) and made into an entry. A MISS and a background render
 * (regeneration, `prerender()`) both go this way; they differ in who sees the response while
 * it streams.
 */
export class PageRender {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** When the page counts as generated (`Engine.renderStart`): its age is measured from it. */
  readonly generatedAt: number;
  private readonly cookiesRead: () => boolean;
  private readonly namesRead: () => ReadonlySet<string>;

  constructor(
    private readonly engine: Engine,
    readonly url: string,
    /** Exactly what the render's request carries (`sharedRequestHeaders`). */
    readonly requestHeaders: Record<string, string>,
    /** Rendered as over TLS, like the request it is made for. */
    readonly secure: boolean,
  ) {
    this.generatedAt = engine.renderStart();
    const exchange = syntheticExchange(url, requestHeaders, secure);
    this.req = exchange.req;
    this.res = exchange.res;
    this.cookiesRead = exchange.cookiesRead;
    this.namesRead = exchange.namesRead;
    installResponseConfig(this.res as IsrResponse);
  }

  /** Captures the response as the app writes it, within `maxBodySize` and `regenerateTimeout`. */
  capture(hooks: CaptureHooks = {}): Promise<Captured> {
    const { maxBodySize, regenerateTimeout } = this.engine.options;
    return captureResponse(this.res, { maxBodySize, abandonAfterMs: regenerateTimeout, ...hooks });
  }

  /** The page's policy: the route's `res.isr()`, else its caching headers, else the options. */
  policy(headers: OutgoingHttpHeaders): PagePolicy {
    return responseConfig(this.res as IsrResponse, this.engine.options, headers);
  }

  /** Why a response with this status and these headers may not be stored (`undefined`: it may). */
  uncacheable(
    status: number,
    headers: OutgoingHttpHeaders,
    policy: PagePolicy,
  ): string | undefined {
    return (
      responseUncacheableReason(status, headers, policy.revalidate, this.engine.options) ??
      codingProblem(headers) ??
      this.unkeyedRead(headers)
    );
  }

  /**
   * What the body can still change once the response was judged at its head: a route may call
   * `res.isr({ revalidate: 0 })`, or read a forwarded header, while its body streams.
   */
  uncacheableSinceHead(headers: OutgoingHttpHeaders, policy: PagePolicy): string | undefined {
    return policy.revalidate === 0 ? 'revalidate 0' : this.unkeyedRead(headers);
  }

  /** The headers the page varies on that its render was given (only those tell variants apart). */
  renderedVary(headers: OutgoingHttpHeaders): string[] {
    return varyNames(headers).filter((name) => name in this.requestHeaders);
  }

  /**
   * What the entry is made with (see `buildEntry`), but its compression. Asked once per render:
   * whether it read the Cookie header is noted then.
   */
  entryContext(policy: PagePolicy): Omit<EntryContext, 'compressThreshold'> {
    const readsCookies = this.cookiesRead();
    if (readsCookies) this.engine.noteCookiesRead(this.url);
    return {
      url: this.url,
      requestHeaders: this.requestHeaders,
      generatedAt: this.generatedAt,
      ...policy,
      version: this.engine.version,
      readsCookies,
      secure: this.secure,
    };
  }

  /** A forwarded header the render read without varying on it (see `unkeyedHeaderReason`). */
  private unkeyedRead(headers: OutgoingHttpHeaders): string | undefined {
    const { unkeyedChecked } = this.engine.options;
    return unkeyedHeaderReason(this.namesRead(), unkeyedChecked, varyNames(headers));
  }
}
