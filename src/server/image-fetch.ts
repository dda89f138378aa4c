// The https client for image URLs: size caps, time limits, a few redirects, and every DNS answer checked by the
// address policy, with the connection pinned to a checked address; a request's URLs share one pool and deadline.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { type ApiError, badRequest, fileTooLarge } from '../contract/errors.js';
import { IMAGE_FORMATS, IMAGE_MIME_TYPES } from '../imaging/formats.js';
import { isPrivateAddress } from './address-policy.js';

/** Default time limit for fetching one image URL (connect + headers + body, redirects included). */
export const URL_FETCH_TIMEOUT_MS = 10_000;
export const URL_MAX_REDIRECTS = 3;
/** What the server asks image hosts for. */
const ACCEPT = IMAGE_FORMATS.map((f) => IMAGE_MIME_TYPES[f]).join(', ');

export interface UrlFetchOptions {
  /** Allow loopback / private / link-local targets and plain http (development and tests only). */
  allowPrivate: boolean;
  maxBytes: number;
  timeoutMs?: number;
  /** Stops the fetch at once; it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Bytes several fetches share (a request's total), counted as they arrive. */
  shared?: SharedBytes;
}

/** A byte cap several fetches draw from; `refuse` is the error for the fetch that goes over it. */
export interface SharedBytes {
  left: number;
  refuse(param: string): ApiError;
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

/** Reads a 2xx body into memory, refusing it (declared or counted) at maxBytes or past the shared cap. */
function readBody(res: http.IncomingMessage, param: string, opts: UrlFetchOptions, finish: (err: unknown, answer?: Answer) => void): void {
  const { maxBytes, shared } = opts;
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
    if (shared) shared.left -= c.length;
    if (size >= maxBytes || (shared && shared.left < 0)) {
      res.destroy();
      finish(size >= maxBytes ? fileTooLarge(param, maxBytes, size) : shared!.refuse(param));
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
      opts.signal?.removeEventListener('abort', onAbort);
      if (answer) resolve(answer);
      else reject(err);
    };
    const onAbort = () => {
      req.destroy();
      finish(opts.signal!.reason);
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
      readBody(res, param, opts, finish);
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(urlError(param, `fetching the image took longer than ${timeoutMs} ms.`));
    }, budgetMs);
    req.on('error', (err) => finish(connectError(param, err)));
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
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

export interface UrlSessionOptions {
  allowPrivate: boolean;
  /** URLs fetched at once; the others wait their turn in request order. */
  concurrency: number;
  /** Time limit per URL. */
  timeoutMs: number;
  /** Time limit for all the session's URLs together, from the first fetch. */
  deadlineMs: number;
  /** Bytes all the session's URLs may add up to. */
  totalBytes: number;
}

/**
 * The image URLs of one request: fetched concurrently, at most `concurrency` at once (the others wait their turn
 * in request order), each under its own time limit, all under one deadline and one byte total. When the deadline
 * passes, every fetch still pending rejects with a 400 naming the earliest URL still downloading (the slow one),
 * and its connection is closed; close() ends the session (done, or another input failed) and aborts what is left.
 */
export class UrlFetchSession {
  readonly #opts: UrlSessionOptions;
  readonly #abort = new AbortController();
  readonly #shared: SharedBytes;
  /** Params of the fetches downloading now, in the order they started. */
  readonly #active = new Set<string>();
  readonly #waiting: Array<{ start: () => void; stop: (reason: unknown) => void }> = [];
  #slots = 0;
  #deadline: NodeJS.Timeout | undefined;
  #deadlineAt = Number.POSITIVE_INFINITY;

  constructor(opts: UrlSessionOptions) {
    this.#opts = opts;
    // Each running fetch listens for the abort (Node warns past 10 listeners by default).
    setMaxListeners(opts.concurrency + 1, this.#abort.signal);
    const mb = Math.round((opts.totalBytes / (1024 * 1024)) * 100) / 100;
    this.#shared = {
      left: opts.totalBytes,
      refuse: (param) => urlError(param, `the images of this request add up to more than ${mb} MB.`, 'file_too_large'),
    };
  }

  /** Fetches one URL in its turn; `maxBytes` caps this one. */
  async fetch(url: string, param: string, maxBytes: number): Promise<Buffer> {
    this.#startDeadline();
    if (performance.now() >= this.#deadlineAt) throw this.#late(param);
    await this.#turn();
    this.#active.add(param);
    try {
      const { allowPrivate, timeoutMs } = this.#opts;
      return await fetchImageUrl(url, param, { allowPrivate, maxBytes, timeoutMs, signal: this.#abort.signal, shared: this.#shared });
    } finally {
      this.#active.delete(param);
      this.#release();
    }
  }

  /** Aborts what is still pending (with `reason`, or a plain abort) and stops the deadline timer. */
  close(reason?: unknown): void {
    clearTimeout(this.#deadline);
    if (this.#abort.signal.aborted) return;
    this.#abort.abort(reason);
    for (const waiter of this.#waiting.splice(0)) waiter.stop(this.#abort.signal.reason);
  }

  /** Takes a slot, or waits for one; rejects with the abort reason if the session is closed first. */
  #turn(): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#slots < this.#opts.concurrency) {
      this.#slots++;
      return Promise.resolve();
    }
    return new Promise((start, stop) => this.#waiting.push({ start, stop }));
  }

  /** Hands the slot to the next waiting fetch, or frees it. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next.start();
    else this.#slots--;
  }

  #late(param: string): ApiError {
    const seconds = Math.round(this.#opts.deadlineMs) / 1000;
    return urlError(param, `fetching this request's image URLs took longer than ${seconds} s in total, and this one had not arrived.`);
  }

  #startDeadline(): void {
    if (this.#deadline) return;
    this.#deadlineAt = performance.now() + this.#opts.deadlineMs;
    this.#deadline = setTimeout(() => {
      const slow = this.#active.values().next().value;
      if (slow !== undefined) this.close(this.#late(slow));
    }, this.#opts.deadlineMs);
  }
}
