// A local Hugging Face hub for tests, with the real API's shape as @huggingface/hub and huggingface_hub call it:
// model info (/api/models/{repo}/revision/{rev}), the paged tree (/api/models/{repo}/tree/{rev}, Link: next),
// `resolve` answering small files itself and redirecting LFS ones to a second "CDN" origin with a signed URL, Range,
// ETag / X-Linked-Etag / X-Linked-Size / X-Repo-Commit, and X-Error-Code for missing, gated and private repositories.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

export interface HubFile {
  path: string;
  content: Buffer;
  /** Stored in LFS (redirected to the CDN, listed with lfs.oid = sha256). Default: .onnx, .onnx_data, .pb, .safetensors. */
  lfs?: boolean;
}

export interface HubRepo {
  files: HubFile[];
  /** Commit the default branch points at; other names given in `refs` resolve too. */
  sha?: string;
  refs?: Record<string, string>;
  /** Answer 403 GatedRepo to everyone but this token. */
  gatedFor?: string;
  /** Answer 401 RepoNotFound (as the hub does for private repos) without this token. */
  privateFor?: string;
}

export interface Hit {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

export interface LocalHub {
  endpoint: string;
  cdn: string;
  repos: Map<string, HubRepo & { sha: string }>;
  hits: Hit[];
  /** path -> bytes after which the next response for it is cut off (once). */
  dropAfter: Map<string, number>;
  /** Paths whose bytes are served with one byte flipped. */
  corrupt: Set<string>;
  /** Paths for which Range is ignored (200 with the whole file). */
  ignoreRange: Set<string>;
  /** path -> bytes after which the next response for it stops sending, its connection left open (once). */
  stallAfter: Map<string, number>;
  /** Tree entries per page (exercises the Link header). */
  pageSize: number;
  reset(): void;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** git's blob id, which the hub lists as `oid` and sends as the ETag of a non-LFS file. */
export const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (f: HubFile) => f.lfs ?? /\.(onnx|onnx_data|pb|safetensors|bin|ckpt)$/.test(f.path);

/** Every file under `dir` as repository files, at `prefix` (e.g. "onnx/"). */
export function filesOf(dir: string, prefix = ''): HubFile[] {
  const out: HubFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: prefix + relative(dir, p).split('\\').join('/'), content: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}

/** A commit id derived from the files, so a changed repository gets a new one. */
export function commitOf(files: HubFile[]): string {
  const h = createHash('sha1');
  for (const f of files) h.update(f.path).update(sha256(f.content));
  return h.digest('hex');
}

export async function startLocalHub(repos: Record<string, HubRepo>): Promise<LocalHub> {
  const hub: LocalHub = {
    endpoint: '',
    cdn: '',
    repos: new Map(Object.entries(repos).map(([k, r]) => [k, { ...r, sha: r.sha ?? commitOf(r.files) }])),
    hits: [],
    dropAfter: new Map(),
    corrupt: new Set(),
    ignoreRange: new Set(),
    stallAfter: new Map(),
    pageSize: 8,
    reset() {
      hub.hits = [];
      hub.dropAfter.clear();
      hub.corrupt.clear();
      hub.ignoreRange.clear();
      hub.stallAfter.clear();
    },
    async close() {
      await Promise.all(
        [hubServer, cdnServer].map((s) => {
          s.closeAllConnections();
          return new Promise((r) => s.close(r));
        }),
      );
    },
  };

  const fail = (res: http.ServerResponse, status: number, code: string, message: string) =>
    res
      .writeHead(status, { 'x-error-code': code, 'x-error-message': message, 'content-type': 'application/json' })
      .end(JSON.stringify({ error: message }));

  /** The repository for a request, or undefined after answering the error the hub would. */
  const repoFor = (req: http.IncomingMessage, res: http.ServerResponse, name: string, rev: string) => {
    const repo = hub.repos.get(name);
    const auth = req.headers.authorization;
    if (!repo || (repo.privateFor && auth !== `Bearer ${repo.privateFor}`)) {
      fail(res, repo ? 401 : 404, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    if (repo.gatedFor && auth !== `Bearer ${repo.gatedFor}`) {
      fail(res, 403, 'GatedRepo', `Access to model ${name} is restricted. You must have access to it and be authenticated.`);
      return undefined;
    }
    const sha = rev === 'main' || rev === 'HEAD' || rev === repo.sha ? repo.sha : repo.refs?.[rev];
    if (!sha) {
      fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return undefined;
    }
    return { repo, sha };
  };

  const serveBytes = (req: http.IncomingMessage, res: http.ServerResponse, file: HubFile, extra: Record<string, string>) => {
    let body = file.content;
    if (hub.corrupt.has(file.path)) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', ...extra };
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m && !hub.ignoreRange.has(file.path)) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1;
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
      body = body.subarray(start, end + 1);
      status = 206;
    }
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stall = hub.stallAfter.get(file.path);
    if (stall !== undefined && status !== 206) {
      hub.stallAfter.delete(file.path);
      res.write(body.subarray(0, stall));
      return;
    }
    const cut = hub.dropAfter.get(file.path);
    if (cut !== undefined && status !== 206) {
      hub.dropAfter.delete(file.path);
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    res.end(body);
  };

  const treeEntries = (files: HubFile[]) => {
    const dirs = new Set<string>();
    for (const f of files) {
      const segs = f.path.split('/');
      for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
    }
    return [
      ...[...dirs].sort().map((path) => ({ type: 'directory', oid: 'd'.repeat(40), size: 0, path })),
      ...files.map((f) => ({
        type: 'file',
        oid: isLfs(f)
          ? gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.content)}\n`))
          : gitOid(f.content),
        size: f.content.length,
        path: f.path,
        ...(isLfs(f) ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
      })),
    ];
  };

  const hubHandler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hub.hits.push({
      server: 'hub',
      method: req.method ?? 'GET',
      url: url.pathname + url.search,
      range: req.headers.range,
      auth: req.headers.authorization,
    });
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const found = repoFor(req, res, m[1], decodeURIComponent(m[2]));
      if (!found) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          _id: `id-${m[1]}`,
          id: m[1],
          sha: found.sha,
          private: !!found.repo.privateFor,
          gated: found.repo.gatedFor ? 'manual' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2026-01-01T00:00:00.000Z',
          tags: ['diffusers', 'onnx'],
          siblings: found.repo.files.map((f) => ({ rfilename: f.path })),
        }),
      );
      return;
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    if (m) {
      const found = repoFor(req, res, m[1], decodeURIComponent(m[2]));
      if (!found) return;
      const all = treeEntries(found.repo.files);
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = all.slice(cursor, cursor + hub.pageSize);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cursor + hub.pageSize < all.length) {
        const next = new URL(`${hub.endpoint}${url.pathname}${url.search}`);
        next.searchParams.set('cursor', String(cursor + hub.pageSize));
        headers.link = `<${next}>; rel="next"`;
      }
      res.writeHead(200, headers).end(JSON.stringify(page));
      return;
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const found = repoFor(req, res, m[1], decodeURIComponent(m[2]));
      if (!found) return;
      const path = m[3].split('/').map(decodeURIComponent).join('/');
      const file = found.repo.files.find((f) => f.path === path);
      if (!file) {
        fail(res, 404, 'EntryNotFound', `${path} does not exist on "${m[2]}"`);
        return;
      }
      const common = { 'x-repo-commit': found.sha, 'x-linked-size': String(file.content.length) };
      if (isLfs(file)) {
        const oid = sha256(file.content);
        res.writeHead(302, { ...common, 'x-linked-etag': `"${oid}"`, location: `${hub.cdn}/lfs/${oid}?X-Amz-Signature=local` }).end();
        return;
      }
      serveBytes(req, res, file, { ...common, etag: `"${gitOid(file.content)}"` });
      return;
    }
    fail(res, 404, 'NotFound', `no route ${url.pathname}`);
  };

  const cdnHandler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hub.hits.push({
      server: 'cdn',
      method: req.method ?? 'GET',
      url: url.pathname,
      range: req.headers.range,
      auth: req.headers.authorization,
    });
    const m = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname);
    const file = m && [...hub.repos.values()].flatMap((r) => r.files).find((f) => isLfs(f) && sha256(f.content) === m[1]);
    if (!file || url.searchParams.get('X-Amz-Signature') !== 'local' || req.headers.authorization) {
      res.writeHead(403).end('signature mismatch');
      return;
    }
    serveBytes(req, res, file, { etag: `"${sha256(file.content)}"` });
  };

  const listen = async (handler: http.RequestListener): Promise<[http.Server, string]> => {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
  };
  const [hubServer, endpoint] = await listen(hubHandler);
  const [cdnServer, cdn] = await listen(cdnHandler);
  hub.endpoint = endpoint;
  hub.cdn = cdn;
  return hub;
}

/**
 * The tiny fixture as the repositories a hub holds: the pipeline at the root with fp16-named parts beside the plain
 * ones (model.fp16.onnx: the same graph with one extra protobuf field, so its bytes and hash differ) and PyTorch
 * weights to skip; and the ONNX pipeline in onnx/ beside a PyTorch layout whose model_index.json, scheduler and
 * tokenizer sit at the root.
 */
export function fixtureRepos(tinyDir: string): { root: HubFile[]; subfolder: HubFile[] } {
  const tiny = filesOf(tinyDir);
  const junk = (path: string, n: number): HubFile => ({ path, content: Buffer.alloc(n, path.length) });
  const fp16 = tiny
    .filter((f) => f.path.endsWith('/model.onnx'))
    .map((f) => ({ path: f.path.replace(/model\.onnx$/, 'model.fp16.onnx'), content: withUnknownField(f.content, 'fp16') }));
  const root = [
    { path: '.gitattributes', content: Buffer.from('*.onnx filter=lfs diff=lfs merge=lfs -text\n') },
    { path: 'README.md', content: Buffer.from('# tiny-sd\n') },
    { path: 'scheduler/empty.txt', content: Buffer.alloc(0) },
    ...tiny,
    ...fp16,
    junk('unet/diffusion_pytorch_model.safetensors', 4000),
    junk('text_encoder/model.safetensors', 3000),
    junk('v1-5-pruned.ckpt', 2000),
  ];
  const atRoot = tiny.filter((f) => !f.path.endsWith('.onnx'));
  const subfolder = [
    ...atRoot.map((f) => (f.path.startsWith('vae_decoder/') ? { ...f, path: f.path.replace('vae_decoder/', 'vae/') } : f)),
    junk('unet/diffusion_pytorch_model.safetensors', 4000),
    junk('vae/diffusion_pytorch_model.bin', 1000),
    ...tiny.filter((f) => f.path.endsWith('.onnx')).map((f) => ({ ...f, path: `onnx/${f.path}` })),
  ];
  return { root, subfolder };
}

/** The model with an unknown length-delimited field (number 1000) appended: protobuf readers skip it. */
export function withUnknownField(model: Buffer, text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([model, Buffer.from([0xc2, 0x3e, payload.length]), payload]);
}

// --- ONNX external data, by rewriting the protobuf wire format (ModelProto.graph = 7, GraphProto.initializer = 5,
// TensorProto.raw_data = 9, external_data = 13 as StringStringEntryProto {key = 1, value = 2}, data_location = 14).

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

interface Field {
  num: number;
  wire: number;
  /** The whole field, tag included. */
  raw: Buffer;
  /** Payload of a length-delimited field. */
  body?: Buffer;
}

function readVarint(buf: Buffer, at: number): [number, number] {
  let v = 0;
  let mul = 1;
  let i = at;
  for (;;) {
    const b = buf[i++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, i];
    mul *= 0x80;
  }
}

function fieldsOf(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  while (i < buf.length) {
    const start = i;
    const [tag, afterTag] = readVarint(buf, i);
    const num = Math.floor(tag / 8);
    const wire = tag % 8;
    i = afterTag;
    let body: Buffer | undefined;
    if (wire === 0) i = readVarint(buf, i)[1];
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const [len, afterLen] = readVarint(buf, i);
      body = buf.subarray(afterLen, afterLen + len);
      i = afterLen + len;
    } else throw new Error(`unsupported wire type ${wire}`);
    out.push({ num, wire, raw: buf.subarray(start, i), body });
  }
  return out;
}

const lenField = (num: number, body: Buffer) => Buffer.concat([varint(num * 8 + 2), varint(body.length), body]);
const entry = (key: string, value: string) => lenField(13, Buffer.concat([lenField(1, Buffer.from(key)), lenField(2, Buffer.from(value))]));

/**
 * The model with every initializer of at least `minBytes` moved into one external data file named `location` (as
 * optimum and diffusers save models over 2 GB), so a test can check the loader finds it beside model.onnx.
 */
export function withExternalData(model: Buffer, location: string, minBytes = 1024): { model: Buffer; data: Buffer; moved: number } {
  const chunks: Buffer[] = [];
  let offset = 0;
  let moved = 0;
  const tensor = (t: Buffer): Buffer => {
    const fields = fieldsOf(t);
    const raw = fields.find((f) => f.num === 9 && f.body);
    if (!raw?.body || raw.body.length < minBytes) return t;
    chunks.push(raw.body);
    const ext = [entry('location', location), entry('offset', String(offset)), entry('length', String(raw.body.length))];
    offset += raw.body.length;
    moved++;
    return Buffer.concat([...fields.filter((f) => f !== raw).map((f) => f.raw), ...ext, varint(14 * 8), varint(1)]);
  };
  const graph = (g: Buffer) => Buffer.concat(fieldsOf(g).map((f) => (f.num === 5 && f.body ? lenField(5, tensor(f.body)) : f.raw)));
  const out = Buffer.concat(fieldsOf(model).map((f) => (f.num === 7 && f.body ? lenField(7, graph(f.body)) : f.raw)));
  return { model: out, data: Buffer.concat(chunks), moved };
}
