// A request as the page is about to send it: endpoint, body fields in the order shown, files. The same value
// becomes the fetch (JSON or multipart) and the "Copy as curl" / "Copy as Node" snippets, so they never disagree.

export type Mode = 'generate' | 'edit' | 'variation';

export interface FilePart {
  field: 'image' | 'mask';
  blob: Blob;
  filename: string;
}

export interface PlannedRequest {
  mode: Mode;
  path: string;
  params: Record<string, string | number | boolean>;
  files: FilePart[];
  stream: boolean;
}

export const PATHS: Record<Mode, string> = {
  generate: '/v1/images/generations',
  edit: '/v1/images/edits',
  variation: '/v1/images/variations',
};

/** The fetch init: JSON for generations, multipart (text fields as strings, as the SDK sends them) otherwise. */
export function requestInit(req: PlannedRequest, signal: AbortSignal): RequestInit {
  if (req.mode === 'generate') {
    return { method: 'POST', signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify(req.params) };
  }
  const form = new FormData();
  for (const f of req.files) form.append(f.field, f.blob, f.filename);
  for (const [k, v] of Object.entries(req.params)) form.append(k, String(v));
  return { method: 'POST', signal, body: form };
}

/** Single-quoted for a POSIX shell. */
function sh(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

export function curlCommand(req: PlannedRequest, origin: string, withKey: boolean): string {
  const lines = [`curl -sS${req.stream ? 'N' : ''} ${origin}${req.path}`];
  if (withKey) lines.push(`-H "Authorization: Bearer $EASEL_API_KEY"`);
  if (req.mode === 'generate') {
    lines.push(`-H 'Content-Type: application/json'`, `-d ${sh(JSON.stringify(req.params))}`);
  } else {
    for (const f of req.files) lines.push(`-F ${f.field}=@${f.filename}`);
    // --form-string: a value starting with @ or < is sent as text, never read from a file.
    for (const [k, v] of Object.entries(req.params)) lines.push(`--form-string ${sh(`${k}=${v}`)}`);
  }
  return lines.join(' \\\n  ');
}

function jsObject(params: Record<string, unknown>, extra: string[]): string {
  const fields = [
    ...extra,
    ...Object.entries(params).map(([k, v]) => `${/^[a-z_]\w*$/i.test(k) ? k : JSON.stringify(k)}: ${JSON.stringify(v)}`),
  ];
  return `{\n${fields.map((f) => `  ${f},`).join('\n')}\n}`;
}

const SDK_METHODS: Record<Mode, string> = { generate: 'generate', edit: 'edit', variation: 'createVariation' };

export function nodeSnippet(req: PlannedRequest, origin: string): string {
  const files = req.files.map((f) => `${f.field}: fs.createReadStream(${JSON.stringify(f.filename)})`);
  const call = `client.images.${SDK_METHODS[req.mode]}(${jsObject(req.params, files)})`;
  const ext = typeof req.params.output_format === 'string' ? req.params.output_format : 'png';
  const head = [
    "import fs from 'node:fs';",
    "import OpenAI from 'openai';",
    '',
    `const client = new OpenAI({ baseURL: ${JSON.stringify(`${origin}/v1`)}, apiKey: process.env.EASEL_API_KEY ?? 'none' });`,
  ];
  const body = req.stream
    ? [
        `const stream = await ${call};`,
        'let i = 0;',
        'for await (const event of stream) {',
        `  if (event.type.endsWith('.completed')) fs.writeFileSync(\`image-\${i++}.${ext}\`, Buffer.from(event.b64_json, 'base64'));`,
        '}',
      ]
    : [
        `const result = await ${call};`,
        `result.data?.forEach((image, i) => fs.writeFileSync(\`image-\${i}.${ext}\`, Buffer.from(image.b64_json ?? '', 'base64')));`,
      ];
  return [...head, ...body].join('\n');
}
