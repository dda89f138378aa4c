// End-to-end tests of POST /v1/images/edits and /v1/images/variations with the official openai client against a
// real server on an ephemeral port (tiny-sd fixture), including hostile uploads and streaming edits.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openSqliteDb } from '../../src/db/index.js';
import { MAX_INPUT_PIXELS } from '../../src/imaging/decode.js';
import { isPrivateAddress } from '../../src/server/address-policy.js';
import { fetchImageUrl } from '../../src/server/image-fetch.js';
import { type RunningServer, startServer } from '../../src/server/start.js';
import { validateSchema } from '../helpers/openapi.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'tiny-sd');

let server: RunningServer;
let client: OpenAI;
let dataDir: string;

function expectValid(body: unknown) {
  expect(validateSchema('ImagesResponse', body)).toEqual([]);
}

/** Short digest of a base64 image, so failing comparisons print hashes instead of megabytes. */
const digest = (b64: string) => createHash('sha256').update(b64).digest('hex').slice(0, 16);

async function meta(b64: string) {
  return sharp(Buffer.from(b64, 'base64')).metadata();
}

/** A solid-colour PNG (or other format). */
async function picture(width: number, height: number, color = '#3366cc', format: 'png' | 'jpeg' | 'webp' = 'png'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: color } })
    [format]()
    .toBuffer();
}

/** RGBA PNG mask: alpha 0 (edit) for x >= transparentFrom * width, opaque elsewhere. */
async function maskPng(width: number, height: number, transparentFrom = 0.5): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 4, 0);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      data[i + 3] = x >= transparentFrom * width ? 0 : 255;
    }
  }
  return sharp(data, { raw: { width, height, channels: 4 } })
    .png()
    .toBuffer();
}

function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of buf) {
    let c = (crc ^ byte) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A valid-looking PNG whose IHDR declares 50000x50000 RGB (a decompression bomb if anyone decoded it). */
function bombPng(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50000, 0);
  ihdr.writeUInt32BE(50000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(4096))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const png = (buf: Buffer, name = 'image.png') => toFile(buf, name, { type: 'image/png' });

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'easel-edits-'));
  const config = loadConfig({ model: FIXTURE, port: 0, dataDir }, { EASEL_THREADS: '1' });
  server = await startServer(config, { waitForWarmUp: true });
  client = new OpenAI({ apiKey: 'sk-anything', baseURL: `${server.url}/v1`, maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('edits', () => {
  it('edits one image (image-to-image) with usage counting the input image', async () => {
    const res = await client.images.edit({
      model: 'gpt-image-1',
      image: await png(await picture(512, 512)),
      prompt: 'make it red',
      size: '1024x1024',
      quality: 'low',
    });
    expectValid(res);
    expect(res.data).toHaveLength(1);
    const m = await meta(res.data![0].b64_json!);
    expect([m.format, m.width, m.height]).toEqual(['png', 1024, 1024]);
    // 512x512 input: one 512-px tile → 65 + 129 = 194 image tokens.
    expect(res.usage!.input_tokens_details!.image_tokens).toBe(194);
    expect(res.usage!.output_tokens).toBe(272);
    expect(res.quality).toBe('low');
  });

  it('takes several images (image[]); all count as input, size auto follows the first', async () => {
    const res = await client.images.edit({
      model: 'gpt-image-1',
      image: [
        await png(await picture(768, 512)),
        await toFile(await picture(1024, 1024, '#00ff00', 'jpeg'), 'b.jpg', { type: 'image/jpeg' }),
      ],
      prompt: 'combine them',
      quality: 'low',
      input_fidelity: 'high',
    });
    expectValid(res);
    expect(res.size).toBe('1536x1024');
    expect((await meta(res.data![0].b64_json!)).width).toBe(1536);
    // 768x512 → 1 tile... scaled so the shortest side is 512 (no change): 2 tiles = 65 + 258 = 323, +6240 (not square).
    // 1024x1024 → 512x512: 194, +4160 (square).
    expect(res.usage!.input_tokens_details!.image_tokens).toBe(323 + 6240 + 194 + 4160);
  });

  it('inpaints where the mask is transparent: an all-opaque mask keeps the image whatever the seed', async () => {
    const image = await picture(256, 256, '#cc8844');
    const edit = async (mask: Buffer, seed: number) =>
      (
        await client.images.edit({
          model: 'gpt-image-1',
          image: await png(image),
          mask: await png(mask, 'mask.png'),
          prompt: 'a blue circle',
          size: '1024x1024',
          quality: 'low',
          seed,
        } as OpenAI.ImageEditParamsNonStreaming)
      ).data![0].b64_json!;
    const fingerprint = async (mask: Buffer, seed: number) => digest(await edit(mask, seed));
    const keepAll = await maskPng(256, 256, 2); // no transparent pixel: nothing to repaint
    expect(await fingerprint(keepAll, 1)).toBe(await fingerprint(keepAll, 2));
    const half = await maskPng(256, 256, 0.5);
    const a = await edit(half, 1);
    expect(digest(a)).not.toBe(await fingerprint(half, 2));
    expect((await meta(a)).width).toBe(1024);
  });

  it('accepts the JSON form with data: URLs (image and mask)', async () => {
    const dataUrl = (buf: Buffer) => `data:image/png;base64,${buf.toString('base64')}`;
    const noise = await sharp(randomBytes(1200 * 1000 * 3), { raw: { width: 1200, height: 1000, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    expect(noise.length).toBeGreaterThan(3 * 1024 * 1024);
    const res = await fetch(`${server.url}/v1/images/edits`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-image-1',
        prompt: 'add stars',
        // The second image is random noise: a ~5 MB data URL, over the 2 MB JSON limit of other routes.
        images: [{ image_url: dataUrl(await picture(300, 200)) }, { image_url: dataUrl(noise) }],
        mask: { image_url: dataUrl(await maskPng(300, 200)) },
        quality: 'low',
        output_format: 'webp',
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as OpenAI.ImagesResponse;
    expectValid(body);
    expect(body.size).toBe('1536x1024');
    const m = await meta(body.data![0].b64_json!);
    expect([m.format, m.width, m.height]).toEqual(['webp', 1536, 1024]);
  });

  it('dall-e-2 edits answer with a URL', async () => {
    const res = await client.images.edit({
      model: 'dall-e-2',
      image: await png(await picture(256, 256)),
      prompt: 'a sun',
      size: '256x256',
    });
    expectValid(res);
    const img = await fetch(res.data![0].url!);
    expect(img.status).toBe(200);
    const m = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    expect([m.width, m.height]).toEqual([256, 256]);
  });

  it('streams partial images then the completed edit', async () => {
    const stream = await client.images.edit({
      model: 'gpt-image-1',
      image: await png(await picture(256, 256)),
      prompt: 'a yellow star',
      stream: true,
      partial_images: 2,
      size: '1024x1024',
    });
    const events: Array<{ type: string; b64_json?: string; partial_image_index?: number; usage?: { output_tokens: number } }> = [];
    for await (const e of stream) events.push(e as never);
    expect(events.map((e) => e.type)).toEqual(['image_edit.partial_image', 'image_edit.partial_image', 'image_edit.completed']);
    expect(events.map((e) => e.partial_image_index)).toEqual([0, 1, undefined]);
    for (const e of events) {
      const schema = e.type === 'image_edit.completed' ? 'ImageEditCompletedEvent' : 'ImageEditPartialImageEvent';
      expect(validateSchema(schema, e)).toEqual([]);
      expect((await meta(e.b64_json!)).width).toBe(1024);
    }
    expect(digest(events[0].b64_json!)).not.toBe(digest(events[2].b64_json!));
    expect(digest(events[1].b64_json!)).not.toBe(digest(events[2].b64_json!));
    expect(events[2].usage!.output_tokens).toBe(1056 + 2 * 100);
  });

  it('a client that leaves mid-stream cancels the edit and frees the engine', async () => {
    const editRecords = async () => {
      const db = openSqliteDb({ path: join(dataDir, 'easel.sqlite') });
      try {
        const rows = (await db.listUsage({ limit: 10000 })).filter((r) => r.endpoint === '/v1/images/edits');
        return rows.map((r) => `${r.status} ${r.errorCode ?? '-'} ${r.images}`).sort();
      } finally {
        await db.close();
      }
    };
    const before = await editRecords();
    const controller = new AbortController();
    const stream = await client.images.edit(
      {
        model: 'gpt-image-1',
        image: await png(await picture(256, 256)),
        prompt: 'slow',
        stream: true,
        partial_images: 3,
        size: '1024x1024',
        num_inference_steps: 100,
      } as never,
      { signal: controller.signal },
    );
    const seen: string[] = [];
    try {
      for await (const e of stream as unknown as AsyncIterable<{ type: string }>) {
        seen.push(e.type);
        controller.abort(); // the SDK ends the iteration quietly (or throws) once aborted
      }
    } catch {
      // aborted
    }
    expect(seen).toEqual(['image_edit.partial_image']);
    const next = await client.images.edit({
      model: 'gpt-image-1',
      image: await png(await picture(64, 64)),
      prompt: 'next',
      size: '1024x1024',
      quality: 'low',
    });
    expect(next.data).toHaveLength(1);
    const ready = (await (await fetch(`${server.url}/readyz`)).json()) as { queue: { running: number; waiting: number } };
    expect(ready.queue).toEqual({ running: 0, waiting: 0 });
    // Only the second edit delivered images; the cancelled one's row says the client left and bills nothing.
    expect(await editRecords()).toEqual([...before, '200 - 1', '499 client_closed_request 0'].sort());
  });
});

describe('variations', () => {
  it('makes n different variations of a square PNG', async () => {
    const res = await client.images.createVariation({
      image: await png(await picture(256, 256, '#884422')),
      n: 2,
      size: '512x512',
      response_format: 'b64_json',
    });
    expectValid(res);
    expect(res.data).toHaveLength(2);
    const [a, b] = res.data!.map((d) => d.b64_json!);
    expect(digest(a)).not.toBe(digest(b));
    const m = await meta(a);
    expect([m.format, m.width, m.height]).toEqual(['png', 512, 512]);
  });

  it('refuses a non-square image and non-dall-e-2 models', async () => {
    await expect(client.images.createVariation({ image: await png(await picture(300, 200)) })).rejects.toMatchObject({
      status: 400,
      param: 'image',
    });
    await expect(client.images.createVariation({ model: 'gpt-image-1', image: await png(await picture(64, 64)) })).rejects.toMatchObject({
      status: 400,
      param: 'model',
    });
  });
});

describe('hostile and malformed uploads', () => {
  const edit = async (image: Awaited<ReturnType<typeof toFile>>, extra: Record<string, unknown> = {}) =>
    client.images.edit({
      model: 'gpt-image-1',
      image,
      prompt: 'x',
      quality: 'low',
      size: '1024x1024',
      ...extra,
    } as OpenAI.ImageEditParamsNonStreaming);

  it('each get a 400 naming the param, and the server keeps serving', async () => {
    const good = await picture(128, 128);
    const truncated = good.subarray(0, good.length - 30);
    const cases: Array<[string, () => Promise<unknown>, string]> = [
      ['decompression bomb', async () => edit(await png(bombPng())), 'image'],
      ['truncated PNG', async () => edit(await png(truncated)), 'image'],
      ['random bytes', async () => edit(await png(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5]))), 'image'],
      ['text named .png', async () => edit(await png(Buffer.from('this is not an image at all\n'), 'evil.png')), 'image'],
      ['mask of the wrong size', async () => edit(await png(good), { mask: await png(await maskPng(64, 64), 'mask.png') }), 'mask'],
      ['mask without alpha', async () => edit(await png(good), { mask: await png(await picture(128, 128), 'mask.png') }), 'mask'],
      ['second image corrupt', async () => edit([await png(good), await png(truncated)] as never), 'image[1]'],
      [
        'dall-e-2 non-square',
        async () => client.images.edit({ model: 'dall-e-2', image: await png(await picture(300, 200)), prompt: 'x' }),
        'image',
      ],
    ];
    for (const [name, run, param] of cases) {
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param, name).toBe(param);
    }
    const ok = await edit(await png(good));
    expect(ok.data).toHaveLength(1);
  });

  it('JSON form: private URLs, file_id and corrupt data URLs are refused', async () => {
    const post = async (body: unknown) => {
      const res = await fetch(`${server.url}/v1/images/edits`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as { error: { param: string | null; code: string | null } };
      expect(validateSchema('ErrorResponse', json)).toEqual([]);
      return { status: res.status, ...json.error };
    };
    const base = { model: 'gpt-image-1', prompt: 'x' };
    expect(await post({ ...base, images: [{ image_url: 'https://127.0.0.1/cat.png' }] })).toMatchObject({
      status: 400,
      param: 'images[0].image_url',
      code: 'image_url_not_allowed',
    });
    expect(await post({ ...base, images: [{ image_url: 'https://[::1]:8443/cat.png' }] })).toMatchObject({
      status: 400,
      param: 'images[0].image_url',
    });
    // localhost resolves (via /etc/hosts, no network) to loopback: refused after the DNS check.
    expect(await post({ ...base, images: [{ image_url: 'https://localhost/cat.png' }] })).toMatchObject({
      status: 400,
      param: 'images[0].image_url',
      code: 'image_url_not_allowed',
    });
    expect(await post({ ...base, images: [{ image_url: 'http://example.com/cat.png' }] })).toMatchObject({
      status: 400,
      param: 'images[0].image_url',
    });
    expect(await post({ ...base, images: [{ file_id: 'file-abc' }] })).toMatchObject({ status: 400, param: 'images[0].file_id' });
    const bad = `data:image/png;base64,${Buffer.from('not a png').toString('base64')}`;
    expect(await post({ ...base, images: [{ image_url: bad }] })).toMatchObject({ status: 400, param: 'images[0].image_url' });
    const bomb = `data:image/png;base64,${bombPng().toString('base64')}`;
    expect(await post({ ...base, images: [{ image_url: bomb }] })).toMatchObject({
      status: 400,
      param: 'images[0].image_url',
      code: 'image_too_large',
    });
  });

  it('classifies private addresses (IPv4 and IPv6, mapped forms included)', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a00:1',
      '2002:c0a8:101::1',
    ]) {
      expect(isPrivateAddress(ip), ip).toBe(true);
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2001:4860:4860::8888']) {
      expect(isPrivateAddress(ip), ip).toBe(false);
    }
    expect(MAX_INPUT_PIXELS).toBeLessThan(50000 * 50000);
  });

  it('fetches image URLs with a size cap and a timeout (private targets allowed only by config)', async () => {
    const image = await picture(32, 32);
    const http: Server = createServer((req, res) => {
      if (req.url === '/img.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(image);
      if (req.url === '/redirect') return res.writeHead(302, { location: '/img.png' }).end();
      if (req.url === '/big') {
        res.writeHead(200);
        res.write(Buffer.alloc(4096));
        return res.end(Buffer.alloc(4096));
      }
      // /slow: never answers
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const opts = { allowPrivate: true, maxBytes: 1000 };
      expect((await fetchImageUrl(`${url}/img.png`, 'p', opts)).equals(image)).toBe(true);
      expect((await fetchImageUrl(`${url}/redirect`, 'p', opts)).equals(image)).toBe(true);
      await expect(fetchImageUrl(`${url}/big`, 'p', opts)).rejects.toMatchObject({ status: 400, param: 'p', code: 'file_too_large' });
      await expect(fetchImageUrl(`${url}/slow`, 'p', { ...opts, timeoutMs: 200 })).rejects.toMatchObject({ status: 400, param: 'p' });
      await expect(fetchImageUrl(`${url}/img.png`, 'p', { allowPrivate: false, maxBytes: 1000 })).rejects.toMatchObject({ status: 400 });
    } finally {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
  });
});
