// Connection deadlines for Node's HTTP server under Fastify (docs/limits.md "Connections"): headers, a whole request
// and idle keep-alive are Node's own timers; a body that stalls and a response write that stalls share the socket's
// inactivity timer (which counts a partial write's progress as activity), read here per phase of the request.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/config.js';

export interface ConnectionLimits {
  headersTimeoutMs: number;
  bodyStallMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  writeStallMs: number;
}

export function connectionLimits(config: Readonly<Config>): ConnectionLimits {
  const s = config.server;
  return {
    headersTimeoutMs: s.headersTimeoutSeconds * 1000,
    bodyStallMs: s.bodyStallSeconds * 1000,
    requestTimeoutMs: s.requestTimeoutSeconds * 1000,
    keepAliveTimeoutMs: s.keepAliveTimeoutSeconds * 1000,
    maxConnections: s.maxConnections,
    writeStallMs: s.writeStallSeconds * 1000,
  };
}

/**
 * Fastify's options for Node's own timers. Node checks the header and request deadlines every
 * connectionsCheckingInterval (30 s by default, longer than the deadlines themselves): here at least once a second.
 */
export function serverTimeouts(l: ConnectionLimits) {
  return {
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    http: {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
    },
  };
}

/** Why the server ended a connection itself (anything else that ends one early is the client going away). */
export type CloseReason = 'body_stall' | 'write_stall' | 'refused';

const reasons = new WeakMap<Socket, CloseReason>();

export function closeReason(socket: Socket | null | undefined): CloseReason | undefined {
  return socket ? reasons.get(socket) : undefined;
}

export function markClosing(socket: Socket, reason: CloseReason): void {
  if (!reasons.has(socket)) reasons.set(socket, reason);
}

interface Guard {
  limits: ConnectionLimits;
  log: () => FastifyBaseLogger;
  /** Answers 408 on the socket and closes it (the same answer as Node's own request timeout). */
  refuseStalledBody(socket: Socket): void;
}

/**
 * Caps open connections and watches each request's socket: while its body arrives, `bodyStallMs` without a byte is
 * a 408; afterwards `writeStallMs` without write progress, with bytes still pending, ends the socket. Waiting for a
 * generation (nothing pending either way) is not a stall. An idle keep-alive socket whose timer fires is closed, as
 * Node would (a 'timeout' listener on the server takes that over from Node).
 */
export function guardConnections(server: Server, guard: Guard): void {
  const { limits } = guard;
  const inFlight = new WeakMap<Socket, IncomingMessage>();
  server.maxConnections = limits.maxConnections;
  let dropped = 0;
  let lastDropLog = 0;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - lastDropLog < 1000) return;
    guard.log().warn({ dropped, maxConnections: limits.maxConnections }, 'connection cap reached; new connections closed');
    lastDropLog = now;
    dropped = 0;
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, req);
    socket.setTimeout(limits.bodyStallMs);
    res.once('close', () => {
      if (inFlight.get(socket) === req) inFlight.delete(socket);
    });
  });

  server.on('timeout', (socket: Socket) => {
    const req = inFlight.get(socket);
    if (!req) {
      socket.destroy(); // an idle keep-alive connection past keepAliveTimeout
      return;
    }
    if (!req.complete) {
      markClosing(socket, 'body_stall');
      guard.log().info({ reqId: requestId(req), url: req.url, receivedBytes: socket.bytesRead }, 'request body stalled; answered 408');
      guard.refuseStalledBody(socket);
      return;
    }
    if (socket.writableLength > 0) {
      markClosing(socket, 'write_stall');
      guard
        .log()
        .warn(
          { reqId: requestId(req), url: req.url, pendingBytes: socket.writableLength, writeStallSeconds: limits.writeStallMs / 1000 },
          'response write stalled; connection closed',
        );
      socket.destroy();
      return;
    }
    socket.setTimeout(limits.writeStallMs); // the job is still running: only a stalled write counts from here
  });
}

const requestIds = new WeakMap<IncomingMessage, string>();

/** Fastify's request id for log lines written outside a request's own logger. */
function requestId(req: IncomingMessage): string | undefined {
  return requestIds.get(req);
}

/** Lets connection log lines name the request: app.ts records Fastify's id for the raw request. */
export function tagRequest(req: IncomingMessage, id: string): void {
  requestIds.set(req, id);
}
