// Server-sent events for streaming image responses: `event:` equal to the JSON `type`, keep-alive comments
// while queued or between events, and `event: error` for failures after the stream has started.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, serverError } from '../contract/errors.js';
import { formatSseEvent, SSE_KEEP_ALIVE, streamErrorEvent } from '../contract/responses.js';

export class SseStream {
  private timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    req: FastifyRequest,
    private readonly reply: FastifyReply,
    keepAliveMs = 5000,
    /** Extra response headers (e.g. x-easel-warning), sent with the status line. */
    headers: Record<string, string> = {},
  ) {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': req.id,
      ...headers,
    });
    reply.raw.write(SSE_KEEP_ALIVE);
    this.timer = setInterval(() => this.raw(SSE_KEEP_ALIVE), keepAliveMs);
    this.timer.unref();
    reply.raw.once('close', () => this.stop());
  }

  get isClosed(): boolean {
    return this.closed || this.reply.raw.destroyed;
  }

  private raw(text: string): void {
    if (!this.isClosed) this.reply.raw.write(text);
  }

  send(event: { type: string }): void {
    this.raw(formatSseEvent(event));
  }

  fail(err: unknown): void {
    const apiErr = err instanceof ApiError ? err : serverError();
    this.send(streamErrorEvent(apiErr));
    this.end();
  }

  private stop(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  end(): void {
    if (!this.isClosed) this.reply.raw.end();
    this.stop();
  }
}
