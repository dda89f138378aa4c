// Image intake for edits and variations: every refusal keeps its OpenAI param, code and wording; input images are
// read the way viewers show them (a phone JPEG stores its pixels sideways and says so in the EXIF orientation tag);
// decodes are charged to the server's decode budget; image URLs are fetched with size caps, time limits, checked
// redirects and the address policy, a request's URLs together (a few at once, one deadline, one byte total).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { EditImageInput } from '../../src/contract/edits.js';
import { decodeCost, MAX_INPUT_PIXELS } from '../../src/imaging/decode.js';
import { fetchImageUrl, type UrlFetchOptions, UrlFetchSession } from '../../src/server/image-fetch.js';
import { checkMask, ImageIntake, type ImageSource, type IntakeLimits, inspectImage, localBytes } from '../../src/server/image-intake.js';
import { describeUpload } from '../../src/server/multipart.js';

/** The default limits, as the server reads them, with `over` laid on top (a fresh object: its own decode budget). */
const limitsWith = (over: Partial<IntakeLimits> = {}): IntakeLimits => ({ ...loadConfig({}, {}).limits, ...over });
const intake = new ImageIntake(limitsWith());

const RED = [220, 30, 30];
const BLUE = [30, 70, 220];

/** A 64x32 picture stored landscape: left half red, right half blue; `orientation` goes into its EXIF. */
async function sidewaysJpeg(orientation: number): Promise<Buffer> {
  const w = 64;
  const h = 32;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set(x < w / 2 ? RED : BLUE, (y * w + x) * 3);
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

const near = (px: ArrayLike<number>, rgb: number[]) => rgb.every((v, i) => Math.abs((px[i] ?? 0) - v) < 24);

const png = (width: number, height: number, alpha = 1) =>
  sharp({ create: { width, height, channels: 4, background: { r: 0, g: 0, b: 0, alpha } } })
    .png()
    .toBuffer();

/** A PNG (RGB) whose header declares width x height over almost no data: a decompression bomb when large. */
function declaredPng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const frame = Buffer.alloc(8 + data.length + 4);
    frame.writeUInt32BE(data.length, 0);
    body.copy(frame, 4);
    frame.writeUInt32BE(crc32(body), 8 + data.length);
    return frame;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

const rejection = (work: Promise<unknown>) =>
  work.then(
    () => undefined,
    (err: unknown) => err,
  );

describe('EXIF orientation of input images', () => {
  it('orientation 6 (rotate 90° clockwise): portrait size, left half of the stored pixels on top', async () => {
    const bytes = await sidewaysJpeg(6);
    expect((await sharp(bytes).metadata()).orientation).toBe(6);
    const img = await inspectImage(bytes, 'image', ['image/jpeg']);
    expect([img.width, img.height]).toEqual([32, 64]);
    expect(await describeUpload({ field: 'image', filename: 'a.jpg', mimetype: 'image/jpeg', data: bytes })).toMatchObject({
      width: 32,
      height: 64,
    });
    await intake.verifyDecodes(img);
    const px = await intake.decodeImage(img, 32, 64, false);
    const at = (x: number, y: number) => px.data.subarray((y * 32 + x) * 4, (y * 32 + x) * 4 + 4);
    expect(near(at(16, 8), RED), `top is red, got ${[...at(16, 8)]}`).toBe(true);
    expect(near(at(16, 56), BLUE), `bottom is blue, got ${[...at(16, 56)]}`).toBe(true);
  });

  it('orientation 1 keeps the stored layout', async () => {
    const img = await inspectImage(await sidewaysJpeg(1), 'image', ['image/jpeg']);
    expect([img.width, img.height]).toEqual([64, 32]);
    const px = await intake.decodeImage(img, 64, 32, false);
    const at = (x: number, y: number) => px.data.subarray((y * 64 + x) * 4, (y * 64 + x) * 4 + 4);
    expect(near(at(8, 16), RED)).toBe(true);
    expect(near(at(56, 16), BLUE)).toBe(true);
  });
});

describe('image refusals as OpenAI errors', () => {
  const ALL = ['image/jpeg', 'image/png', 'image/webp'];

  it('names the parameter, with the codes and wording clients match on', async () => {
    const p = 'images[1].image_url';
    expect(await rejection(inspectImage(Buffer.alloc(0), p, ALL))).toMatchObject({
      status: 400,
      param: p,
      code: 'invalid_image',
      message: `Invalid file '${p}': the file is empty.`,
    });
    expect(await rejection(inspectImage(Buffer.from('this is not an image'), 'image', ALL))).toMatchObject({
      param: 'image',
      code: 'invalid_image_format',
      message: "Invalid file 'image': the file is not a PNG, JPEG or WebP image.",
    });
    expect(await rejection(inspectImage(await sidewaysJpeg(1), 'image', ['image/png']))).toMatchObject({
      param: 'image',
      code: 'unsupported_file_mimetype',
      message: "Invalid file 'image': unsupported mimetype ('image/jpeg'). Supported file formats are 'image/png'.",
    });
    expect(await rejection(inspectImage(declaredPng(50_000, 50_000), 'image[2]', ALL))).toMatchObject({
      param: 'image[2]',
      code: 'image_too_large',
      message: `Invalid file 'image[2]': the image is 50000x50000; images may have at most ${MAX_INPUT_PIXELS} pixels and one frame.`,
    });
  });

  it('refuses data that does not decode, naming the image it came from', async () => {
    const good = await png(64, 64);
    const img = await inspectImage(good.subarray(0, good.length - 30), 'image[1]', ALL);
    for (const work of [() => intake.verifyDecodes(img), () => intake.decodeImage(img, 8, 8, true)]) {
      expect(await rejection(work())).toMatchObject({
        param: 'image[1]',
        code: 'invalid_image',
        message: "Invalid file 'image[1]': the image is corrupt or truncated and could not be decoded.",
      });
    }
  });

  it('mask problems name the mask', async () => {
    const image = await inspectImage(await png(16, 16), 'image', ALL);
    const opaque = await inspectImage(await sidewaysJpeg(1), 'mask.image_url', ALL);
    expect(() => checkMask(opaque, image)).toThrow(expect.objectContaining({ param: 'mask', code: 'invalid_mask' }));
    const small = await inspectImage(await png(8, 8, 0), 'mask', ['image/png']);
    expect(() => checkMask(small, image)).toThrow(
      "Invalid file 'mask': the mask must have the same dimensions as the image (16x16), but it is 8x8.",
    );
    const clear = await inspectImage(await png(16, 16, 0), 'mask', ['image/png']);
    expect(() => checkMask(clear, image)).not.toThrow();
    expect([...(await intake.decodeMask(clear, 2, 2))]).toEqual([1, 1, 1, 1]);
  });

  it('caps data URLs and requires the uploaded part', () => {
    const base64 = Buffer.alloc(10).toString('base64');
    const dataUrl = { source: 'data_url', param: 'images[0].image_url', mimetype: 'image/png', base64, bytes: 10 } as const;
    expect(() => localBytes(dataUrl, undefined, 10)).toThrow(
      expect.objectContaining({ param: 'images[0].image_url', code: 'file_too_large' }),
    );
    const upload = { source: 'upload', param: 'image', field: 'image', filename: null, mimetype: 'image/png', bytes: 3 } as const;
    expect(() => localBytes(upload, undefined, 10)).toThrow(expect.objectContaining({ param: 'image', code: 'invalid_image' }));
    expect(localBytes(upload, Buffer.from('abc'), 10)).toEqual(Buffer.from('abc'));
  });
});

describe('the pixel limit (limits.maxInputPixels) and the decode budget (limits.decodeBudgetBytes)', () => {
  const ALL = ['image/jpeg', 'image/png', 'image/webp'];
  const upload = (param: string): EditImageInput => ({
    source: 'upload',
    param,
    field: 'image[]',
    filename: null,
    mimetype: 'image/png',
    bytes: 1,
  });
  const dataUrl = (param: string, bytes: Buffer): EditImageInput => ({
    source: 'data_url',
    param,
    mimetype: 'image/png',
    base64: bytes.toString('base64'),
    bytes: bytes.length,
  });

  it('refuses a header over the configured limit with a 400 naming the image, wherever it came from', async () => {
    const small = new ImageIntake(limitsWith({ maxInputPixels: 64 * 64 }));
    const ok = await png(64, 64);
    const big = await png(65, 64);
    const source = (input: EditImageInput, data?: Buffer): ImageSource => ({ input, upload: data, mimetypes: ALL, maxBytes: 1e6 });
    const message = (p: string) => `Invalid file '${p}': the image is 65x64; images may have at most 4096 pixels and one frame.`;
    for (const [input, data] of [
      [upload('image[3]'), big],
      [dataUrl('images[2].image_url', big), undefined],
      [upload('mask'), big],
    ] as const) {
      const sources = [source(upload('image[0]'), ok), source(input, data)];
      expect(await rejection(small.readImages(sources))).toMatchObject({
        status: 400,
        param: input.param,
        code: 'image_too_large',
        message: message(input.param),
      });
    }
    const read = await small.readImages([source(upload('image'), ok), source(dataUrl('images[1].image_url', ok))]);
    expect(read.map((img) => [img.param, img.width, img.height])).toEqual([
      ['image', 64, 64],
      ['images[1].image_url', 64, 64],
    ]);
    // The CLI and callers without a config keep the documented default.
    expect(MAX_INPUT_PIXELS).toBe(25_000_000);
    expect(loadConfig({}, {}).limits.maxInputPixels).toBe(MAX_INPUT_PIXELS);
  });

  it('charges every decode to the server-wide budget: what does not fit waits for a decode to finish', async () => {
    const img = await inspectImage(await png(64, 64), 'image', ALL);
    const cost = decodeCost(img, 32, 32);
    const limits = limitsWith({ decodeBudgetBytes: cost + cost / 2 });
    const a = new ImageIntake(limits);
    const b = new ImageIntake(limits); // another request of the same server: the same budget
    expect(b.budget).toBe(a.budget);
    expect(new ImageIntake(limitsWith()).budget).not.toBe(a.budget);
    const first = a.decodeImage(img, 32, 32, false);
    const second = b.decodeImage(img, 32, 32, false);
    const mask = b.decodeMask(img, 32, 32);
    expect(a.budget.inUse).toBe(cost); // one decode at a time fits; the other two wait
    const [x, y, weights] = await Promise.all([first, second, mask]);
    expect([x.data.length, y.data.length, weights.length]).toEqual([32 * 32 * 4, 32 * 32 * 4, 32 * 32]);
    expect(a.budget.inUse).toBe(0);
  });
});

describe("a request's image URLs (UrlFetchSession)", () => {
  let http: Server;
  let url: string;
  const seen: string[] = [];
  const closed: string[] = [];
  /** Requests held open by /wave/* until `waveSize` of them are open at once. */
  const held: Array<() => void> = [];
  let open = 0;
  let maxOpen = 0;
  let waveSize = 0;

  beforeAll(async () => {
    http = createServer((req, res) => {
      const path = req.url ?? '';
      seen.push(path);
      req.on('close', () => closed.push(path));
      if (path.startsWith('/hang')) return; // never answers
      if (path === '/missing') return res.writeHead(404).end();
      if (path.startsWith('/bytes/')) return res.writeHead(200).end(Buffer.alloc(Number(path.split('/')[2])));
      if (path.startsWith('/wave/')) {
        open++;
        maxOpen = Math.max(maxOpen, open);
        held.push(() => {
          open--;
          res.writeHead(200).end(path);
        });
        if (held.length === waveSize) {
          for (const answer of held.splice(0)) answer();
        }
        return;
      }
      res.writeHead(200).end(path);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  const session = (over: Partial<ConstructorParameters<typeof UrlFetchSession>[0]> = {}) =>
    new UrlFetchSession({ allowPrivate: true, concurrency: 4, timeoutMs: 10_000, deadlineMs: 20_000, totalBytes: 1e6, ...over });
  /** Resolves once the server has seen the request for `path` closed. */
  const closedOn = (path: string) => vi.waitFor(() => expect(closed).toContain(path), { timeout: 5000, interval: 20 });

  it('fetches a few at once, in request order, never more than the concurrency', async () => {
    maxOpen = 0;
    waveSize = 3;
    const s = session({ concurrency: 3 });
    try {
      const paths = Array.from({ length: 6 }, (_, i) => `/wave/${i}`);
      const bodies = await Promise.all(paths.map((p, i) => s.fetch(url + p, `images[${i}].image_url`, 1000)));
      expect(bodies.map(String)).toEqual(paths);
      expect(maxOpen).toBe(3);
    } finally {
      s.close();
    }
  });

  it('one deadline for all: a 400 naming the URL still downloading, and the others are aborted', async () => {
    const s = session({ concurrency: 2, deadlineMs: 1000 });
    const fetches = ['/fast/0', '/hang/1', '/hang/2', '/fast/3'].map((p, i) => s.fetch(url + p, `images[${i}].image_url`, 1000));
    const settled = await Promise.allSettled(fetches);
    s.close();
    expect(settled[0]).toMatchObject({ status: 'fulfilled' });
    const late = {
      status: 400,
      param: 'images[1].image_url',
      code: 'invalid_image_url',
      message:
        "Invalid 'images[1].image_url': fetching this request's image URLs took longer than 1 s in total, and this one had not arrived.",
    };
    for (const r of settled.slice(1)) expect(r).toMatchObject({ status: 'rejected', reason: late });
    await closedOn('/hang/1');
    await closedOn('/hang/2');
  });

  it('the requests share one byte total (limits.uploadBytes); close() aborts what is still running', async () => {
    const s = session({ concurrency: 1, totalBytes: 6000 });
    try {
      expect((await s.fetch(`${url}/bytes/5000`, 'images[0].image_url', 10_000)).length).toBe(5000);
      expect(await rejection(s.fetch(`${url}/bytes/5001`, 'images[1].image_url', 10_000))).toMatchObject({
        param: 'images[1].image_url',
        code: 'file_too_large',
        message: "Invalid 'images[1].image_url': the images of this request add up to more than 0.01 MB.",
      });
    } finally {
      s.close();
    }
    const other = session();
    const hanging = rejection(other.fetch(`${url}/hang/close`, 'images[0].image_url', 1000));
    await vi.waitFor(() => expect(seen).toContain('/hang/close'), { timeout: 5000, interval: 20 });
    other.close(new Error('another input was refused'));
    expect(await hanging).toMatchObject({ message: 'another input was refused' });
    await closedOn('/hang/close');
  });

  it('a refused input stops the downloads still running (readImages)', async () => {
    const intakeUrls = new ImageIntake(limitsWith({ allowPrivateImageUrls: true }));
    const src = (param: string, path: string): ImageSource => ({
      input: { source: 'url', param, url: url + path },
      mimetypes: ['image/png'],
      maxBytes: 1e6,
    });
    const refused = intakeUrls.readImages([src('images[0].image_url', '/hang/first'), src('images[1].image_url', '/missing')]);
    expect(await rejection(refused)).toMatchObject({
      param: 'images[1].image_url',
      message: "Invalid 'images[1].image_url': fetching the image failed with HTTP 404.",
    });
    await closedOn('/hang/first');
  });
});

describe('fetching image URLs', () => {
  let http: Server;
  let url: string;
  const IMAGE = Buffer.from('not really a png, the fetcher does not care');

  beforeAll(async () => {
    http = createServer((req, res) => {
      const hops = /^\/hop\/(\d+)$/.exec(req.url ?? '');
      if (req.url === '/img') return res.writeHead(200).end(IMAGE);
      if (hops) return res.writeHead(302, { location: Number(hops[1]) > 0 ? `/hop/${Number(hops[1]) - 1}` : '/img' }).end();
      if (req.url === '/bad-location') return res.writeHead(302, { location: 'http://[::1' }).end();
      if (req.url === '/to-ftp') return res.writeHead(302, { location: 'ftp://example.com/x.png' }).end();
      if (req.url === '/slow-hop') return void setTimeout(() => res.writeHead(302, { location: '/slow-hop' }).end(), 60);
      if (req.url === '/missing') return res.writeHead(404).end();
      res.writeHead(200).end(Buffer.alloc(5000));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });

  const dev: UrlFetchOptions = { allowPrivate: true, maxBytes: 1000 };
  const refusal = (u: string, opts = dev) => rejection(fetchImageUrl(u, 'p', opts));

  it('follows up to three redirects, each target checked again', async () => {
    expect((await fetchImageUrl(`${url}/hop/2`, 'p', dev)).equals(IMAGE)).toBe(true);
    expect(await refusal(`${url}/hop/3`)).toMatchObject({
      param: 'p',
      code: 'invalid_image_url',
      message: "Invalid 'p': too many redirects.",
    });
    expect(await refusal(`${url}/bad-location`)).toMatchObject({
      param: 'p',
      code: 'invalid_image_url',
      message: "Invalid 'p': the URL is not valid.",
    });
    expect(await refusal(`${url}/to-ftp`)).toMatchObject({ param: 'p', message: "Invalid 'p': image URLs must use https." });
  });

  it('caps the size, and the time over all redirects together', async () => {
    expect(await refusal(`${url}/big`)).toMatchObject({ param: 'p', code: 'file_too_large' });
    expect(await refusal(`${url}/missing`)).toMatchObject({ message: "Invalid 'p': fetching the image failed with HTTP 404." });
    const started = performance.now();
    expect(await refusal(`${url}/slow-hop`, { ...dev, timeoutMs: 150 })).toMatchObject({
      message: "Invalid 'p': fetching the image took longer than 150 ms.",
    });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses non-public targets, by literal address or after DNS, unless private targets are allowed', async () => {
    const strict = { allowPrivate: false, maxBytes: 1000 };
    expect(await refusal(`${url}/img`, strict)).toMatchObject({ message: "Invalid 'p': image URLs must use https." });
    for (const target of [
      'https://127.0.0.1/x.png',
      'https://[::ffff:7f00:1]/x.png',
      'https://[2001::1]/x.png',
      'https://192.88.99.1/x.png',
    ]) {
      expect(await refusal(target, strict), target).toMatchObject({ param: 'p', code: 'image_url_not_allowed' });
    }
    // localhost resolves (through /etc/hosts, no network) to loopback: refused by the DNS check.
    expect(await refusal('https://localhost/x.png', strict)).toMatchObject({ code: 'image_url_not_allowed' });
    expect(await refusal('https://user:pw@example.com/x.png', strict)).toMatchObject({
      message: "Invalid 'p': image URLs must not contain credentials.",
    });
  });
});
