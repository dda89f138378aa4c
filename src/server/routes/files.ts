// GET /v1/images/files/:file — serves images saved for `url` responses, only through a valid signed URL, streaming
// them from the store. A forged signature gets 403; an expired (or swept) image 404; a store outage a 503 with Retry-After.
import type { FastifyInstance } from 'fastify';
import { forbidden, notFound } from '../../contract/errors.js';
import { verifyImageUrl } from '../../storage/signing.js';
import type { ImageStore, OpenedImage, StoredImageWithBytes } from '../../storage/types.js';
import { fromStore } from '../delivery.js';
import type { ServerDeps } from '../deps.js';

/** The image as a stream when the store can stream it (S3: straight from the bucket), else read whole. */
function fetchImage(store: ImageStore, id: string, ext: string): Promise<OpenedImage | StoredImageWithBytes | undefined> {
  return store.open ? store.open(id, ext) : store.get(id, ext);
}

export function registerFileRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get<{ Params: { file: string }; Querystring: { expires?: string; sig?: string } }>('/v1/images/files/:file', async (req, reply) => {
    const m = /^([A-Za-z0-9_-]+)\.([a-z]+)$/.exec(req.params.file);
    if (!m) throw notFound('No such image.', 'image_not_found');
    const [, id, ext] = m;
    const verdict = verifyImageUrl({ id, ext, expires: req.query.expires, sig: req.query.sig, secret: deps.urlSecret, now: deps.now });
    if (verdict === 'bad_signature') throw forbidden('The image URL signature is invalid.', 'invalid_signature');
    if (verdict === 'expired') throw notFound('The image URL has expired.', 'image_expired');
    const img = await fromStore(req, () => fetchImage(deps.store, id, ext));
    if (!img || img.ext !== ext) {
      if (img && 'body' in img) img.body.destroy();
      throw notFound('No such image.', 'image_not_found');
    }
    const maxAge = Math.max(0, Math.floor((img.expiresAt - deps.now()) / 1000));
    return reply
      .header('content-type', img.contentType)
      .header('cache-control', `private, max-age=${maxAge}`)
      .header('content-length', String(img.byteLength))
      .send('body' in img ? img.body : img.bytes);
  });
}
