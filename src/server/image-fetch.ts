// The https client for image URLs: size cap, time limit, a few redirects, and every DNS answer checked by the
// address policy, with the connection pinned to a checked address (a rebinding DNS server cannot slip one in).
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { type ApiError, badRequest, fileTooLarge } from '../contract/errors.js';
import { IMAGE_FORMATS, IMAGE_MIME_TYPES } from '../imaging/formats.js';
import { isPrivateAddress } from './address-policy.js';

/** Time limit for fetching one image URL (connect + headers + body). */
export const URL_FETCH_TIMEOUT_MS = 10_000;
export const URL_MAX_REDIRECTS = 3;
/** What the server asks image hosts for. */
const ACCEPT = IMAGE_FORMATS.map((f) => IMAGE_MIME_TYPES[f]).join(', ');

export interface UrlFetchOptions {
  /** Allow loopback / private / link-local targets and plain http (development and tests only). */
  allowPrivate: boolean;
  maxBytes: number;
  timeoutMs?: number;
}

function urlError(param: string, detail: string, code = 'invalid_image_url'): ApiError {
  return badRequest(`Invalid '${param}': ${detail}`, param, code);
}

class BlockedAddressError extends Error {
  constructor(readonly address: string) {
    super(`address ${address} is not public`);
  }
}

/** A dns.lookup that answers only when every resolved address is public (so the connection uses a checked one). */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (!allowPrivate) {
        const bad = addresses.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(new BlockedAddressError(bad.address) as NodeJS.ErrnoException, '', 0);
      }
      if (addresses.length === 0) return callback(new Error(`no address for ${hostname}`) as NodeJS.ErrnoException, '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/**
 * The URL (relative to `base` for a redirect), parsed and checked before any connection: https (http too when
 * private targets are allowed), no credentials, no literal non-public address.
 */
function checkedTarget(url: string, param: string, opts: UrlFetchOptions, base?: URL): URL {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    throw urlError(param, 'the URL is not valid.');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && opts.allowPrivate)) {
    throw urlError(param, 'image URLs must use https.');
  }
  if (u.username || u.password) throw urlError(param, 'image URLs must not contain credentials.');
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !opts.allowPrivate && isPrivateAddress(host)) {
    throw urlError(
      param,
      `the URL points at a private, loopback or link-local address (${host}), which this server does not fetch.`,
      'image_url_not_allowed',
    );
  }
  return u;
}

function connectError(param: string, err: Error): ApiError {
  if (err instanceof BlockedAddressError) {
    return urlError(
      param,
      `the URL resolves to a private, loopback or link-local address (${err.address}), which this server does not fetch.`,
      'image_url_not_allowed',
    );
  }
  return urlError(param, `the image could not be fetched (${(err as NodeJS.ErrnoException).code ?? err.message}).`);
}

type Answer = { body: Buffer } | { location: string };

/** Reads a 2xx body into memory, refusing it (declared or counted) at maxBytes. */
function readBody(res: http.IncomingMessage, param: string, maxBytes: number, finish: (err: unknown, answer?: Answer) => void): void {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared >= maxBytes) {
    res.destroy();
    finish(fileTooLarge(param, maxBytes, declared));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size >= maxBytes) {
      res.destroy();
      finish(fileTooLarge(param, maxBytes, size));
      return;
    }
    chunks.push(c);
  });
  res.on('end', () => finish(null, { body: Buffer.concat(chunks) }));
  res.on('error', () => finish(urlError(param, 'the download was interrupted.')));
}

/** One GET: the body, or where a redirect points. `budgetMs` is what is left of the whole fetch's time limit. */
function getOnce(u: URL, param: string, opts: UrlFetchOptions, budgetMs: number, timeoutMs: number): Promise<Answer> {
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const finish = (err: unknown, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (answer) resolve(answer);
      else reject(err);
    };
    const headers = { accept: ACCEPT, 'user-agent': 'easel' };
    const req = mod.get(u, { lookup: guardedLookup(opts.allowPrivate), headers, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        return finish(null, { location: res.headers.location });
      }
      if (status < 200 || status >= 300) {
        res.resume();
        return finish(urlError(param, `fetching the image failed with HTTP ${status}.`));
      }
      readBody(res, param, opts.maxBytes, finish);
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(urlError(param, `fetching the image took longer than ${timeoutMs} ms.`));
    }, budgetMs);
    req.on('error', (err) => finish(connectError(param, err)));
  });
}

/**
 * GETs an image URL, following up to URL_MAX_REDIRECTS redirects (each target checked again), within one time
 * limit for the whole fetch and a cap on the body. Every problem is an OpenAI error naming `param`.
 */
export async function fetchImageUrl(url: string, param: string, opts: UrlFetchOptions): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? URL_FETCH_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  let target = checkedTarget(url, param, opts);
  for (let redirects = 0; ; redirects++) {
    const answer = await getOnce(target, param, opts, Math.max(1, deadline - performance.now()), timeoutMs);
    if ('body' in answer) return answer.body;
    if (redirects >= URL_MAX_REDIRECTS) throw urlError(param, 'too many redirects.');
    target = checkedTarget(answer.location, param, opts, target);
  }
}
