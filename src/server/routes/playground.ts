// The playground page at `/` and its assets under /playground/, served from the esbuild output (dist/web, made by
// `npm run build`) with @fastify/static: same origin, no CDN, a strict CSP, so it works offline and behind auth.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { notFound } from '../../contract/errors.js';

/** Where `npm run build` puts the page: dist/web at the repository root, from src/ (tsx) and dist/ (built) alike. */
export function playgroundRoot(): string {
  return join(dirname(dirname(dirname(import.meta.dirname))), 'dist', 'web');
}

/** Only our own files, images from data:/blob: URLs (results), requests to this origin: nothing remote, no inline code. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function secure(reply: FastifyReply): void {
  reply.header('content-security-policy', CSP);
  reply.header('referrer-policy', 'no-referrer');
}

export function registerPlaygroundRoutes(app: FastifyInstance, root = playgroundRoot()): void {
  if (!existsSync(join(root, 'index.html'))) {
    app.get('/', async () => {
      throw notFound('The playground page is not built: run `npm run build`, then restart the server.', 'playground_not_built');
    });
    return;
  }
  app.register(fastifyStatic, {
    root,
    prefix: '/playground/',
    index: false,
    wildcard: false,
    cacheControl: true,
    maxAge: 0,
    setHeaders: (res) => {
      res.setHeader('content-security-policy', CSP);
    },
  });
  app.get('/', async (_req, reply) => {
    secure(reply);
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });
}
