// Delivering an encoded image the way the request asked: inline as b64_json, or stored behind a signed URL that
// expires with the store's TTL.
import type { FastifyRequest } from 'fastify';
import { IMAGE_MIME_TYPES } from '../imaging/formats.js';
import type { EncodedImage } from '../jobs/types.js';
import { signImageUrl } from '../storage/signing.js';
import type { ServerDeps } from './deps.js';

export async function deliver(
  deps: ServerDeps,
  req: FastifyRequest,
  image: EncodedImage,
  responseFormat: 'url' | 'b64_json',
): Promise<{ b64_json?: string; url?: string }> {
  const bytes = Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength);
  if (responseFormat === 'b64_json') return { b64_json: bytes.toString('base64') };
  const stored = await deps.store.put(
    { bytes, contentType: IMAGE_MIME_TYPES[image.format] },
    { ttlSeconds: deps.config.images.urlTtlSeconds },
  );
  const baseUrl = deps.config.publicBaseUrl ?? `${req.protocol}://${req.host}`;
  return { url: signImageUrl({ baseUrl, id: stored.id, ext: stored.ext, expiresAt: stored.expiresAt, secret: deps.urlSecret }) };
}
