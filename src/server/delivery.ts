// Delivering an encoded image the way the request asked: inline as b64_json, or stored behind a URL that expires with
// the store's TTL (Easel-signed, or the bucket's own presigned URL under images.urlMode "presigned").
import type { FastifyRequest } from 'fastify';
import { type ApiError, serviceUnavailable } from '../contract/errors.js';
import { IMAGE_MIME_TYPES } from '../imaging/formats.js';
import type { EncodedImage } from '../jobs/types.js';
import { signImageUrl } from '../storage/signing.js';
import { StoreUnavailableError } from '../storage/types.js';
import type { ServerDeps } from './deps.js';

export async function deliver(
  deps: ServerDeps,
  req: FastifyRequest,
  image: EncodedImage,
  responseFormat: 'url' | 'b64_json',
): Promise<{ b64_json?: string; url?: string }> {
  const bytes = Buffer.from(image.bytes.buffer, image.bytes.byteOffset, image.bytes.byteLength);
  if (responseFormat === 'b64_json') return { b64_json: bytes.toString('base64') };
  const { store } = deps;
  const stored = await fromStore(req, () =>
    store.put({ bytes, contentType: IMAGE_MIME_TYPES[image.format] }, { ttlSeconds: deps.config.images.urlTtlSeconds }),
  );
  if (deps.config.images.urlMode === 'presigned' && store.presign) {
    const presign = store.presign.bind(store);
    return { url: await fromStore(req, () => presign(stored)) };
  }
  const baseUrl = deps.config.publicBaseUrl ?? `${req.protocol}://${req.host}`;
  return { url: signImageUrl({ baseUrl, id: stored.id, ext: stored.ext, expiresAt: stored.expiresAt, secret: deps.urlSecret }) };
}

/** The 503 a client gets while the image store is down: OpenAI's envelope, Retry-After, no detail of the bucket. */
export function storeUnavailable(err: StoreUnavailableError): ApiError {
  return serviceUnavailable('The image store is unavailable; retry later.', err.retryAfterSeconds);
}

/** A store call whose outage (StoreUnavailableError, after the store's bounded retries) becomes the retryable 503, logged. */
export async function fromStore<T>(req: FastifyRequest, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    req.log.warn({ err }, 'image store unavailable');
    throw storeUnavailable(err);
  }
}
