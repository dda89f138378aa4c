// Tests for the GET /openapi.json document: structurally valid OpenAPI 3.1 whose schemas all compile under Ajv's
// strict JSON Schema 2020-12, and, per endpoint and family, documenting exactly the fields the contract's parsers accept.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ApiError,
  EXTENSION_FIELDS,
  type Family,
  OPENAI_MODEL_FAMILIES,
  type ParseContext,
  parseGenerationRequest,
  parseJsonEditRequest,
  parseMultipartEditRequest,
  parseVariationRequest,
  type ResolvedModel,
  type UploadedFilePart,
} from '../../src/contract/index.js';
import { openApiDocument } from '../../src/server/openapi.js';

type Schema = Record<string, unknown>;
type Values = Record<string, unknown>;

const MODELS: Array<{ id: string; family: Family }> = [
  { id: 'dall-e-2', family: 'dall-e-2' },
  { id: 'dall-e-3', family: 'dall-e-3' },
  { id: 'gpt-image-1', family: 'gpt-image' },
  { id: 'gpt-image-2', family: 'gpt-image' },
  { id: 'chatgpt-image-latest', family: 'gpt-image' },
];
const REGISTRY: Record<string, ResolvedModel> = Object.fromEntries(
  MODELS.map((m) => [m.id, { name: m.id, family: m.family, extensions: [...EXTENSION_FIELDS] }]),
);
const ctx: ParseContext = { resolveModel: (name) => REGISTRY[name] };
const MODEL_OF: Record<Family, string> = { 'dall-e-2': 'dall-e-2', 'dall-e-3': 'dall-e-3', 'gpt-image': 'gpt-image-1' };

const doc = openApiDocument(MODELS) as {
  openapi: string;
  info: { title: string; version: string };
  components: { schemas: Record<string, Schema> };
  paths: Record<
    string,
    Record<
      string,
      {
        operationId?: string;
        requestBody?: { content: Record<string, { schema: Schema; encoding?: Schema }> };
        responses: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
        parameters?: Array<{ name: string; in: string; schema: Schema }>;
      }
    >
  >;
};

// ---------------------------------------------------------------------------------------------------
// Requests built from documented values, sent through the real parsers.

/** Stands for a file part in a value list (ajv's `binary` format accepts any string). */
const FILE = '<file>';
const IMAGE_REF = { image_url: 'data:image/png;base64,iVBORw0KGgo=' };

function filePart(field: string): UploadedFilePart {
  return { field, filename: 'input.png', mimetype: 'image/png', bytes: 100, width: 64, height: 64 };
}

/** Splits values into multipart text fields and file parts (FILE or [FILE, ...] values). */
function toMultipart(values: Values): { fields: Record<string, string>; parts: UploadedFilePart[] } {
  const fields: Record<string, string> = {};
  const parts: UploadedFilePart[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (value === FILE) parts.push(filePart(name));
    else if (Array.isArray(value) && value.every((v) => v === FILE)) for (const _ of value) parts.push(filePart(name));
    else fields[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return { fields, parts };
}

interface Body {
  label: string;
  path: string;
  mediaType: 'application/json' | 'multipart/form-data';
  families: Family[];
  parse(values: Values): unknown;
}

const BODIES: Body[] = [
  {
    label: 'generations',
    path: '/v1/images/generations',
    mediaType: 'application/json',
    families: ['dall-e-2', 'dall-e-3', 'gpt-image'],
    parse: (v) => parseGenerationRequest(v, ctx),
  },
  {
    label: 'edits (multipart)',
    path: '/v1/images/edits',
    mediaType: 'multipart/form-data',
    families: ['dall-e-2', 'gpt-image'],
    parse: (v) => {
      const { fields, parts } = toMultipart(v);
      return parseMultipartEditRequest(
        fields,
        { images: parts.filter((p) => p.field !== 'mask'), mask: parts.find((p) => p.field === 'mask') },
        ctx,
      );
    },
  },
  {
    label: 'edits (JSON)',
    path: '/v1/images/edits',
    mediaType: 'application/json',
    families: ['gpt-image'],
    parse: (v) => parseJsonEditRequest(v, ctx),
  },
  {
    label: 'variations',
    path: '/v1/images/variations',
    mediaType: 'multipart/form-data',
    families: ['dall-e-2'],
    parse: (v) => {
      const { fields, parts } = toMultipart(v);
      return parseVariationRequest(
        fields,
        { image: parts.find((p) => p.field === 'image'), others: parts.filter((p) => p.field !== 'image') },
        ctx,
      );
    },
  },
];

function bodySchema(body: Body): Schema {
  return doc.paths[body.path].post.requestBody!.content[body.mediaType].schema;
}
function properties(body: Body): Record<string, Schema> {
  return bodySchema(body).properties as Record<string, Schema>;
}
function familiesOf(body: Body, name: string): Family[] {
  return (properties(body)[name]['x-easel-families'] as Family[] | undefined) ?? body.families;
}

/** What the parser did with a request: accepted it, or refused it naming a field. */
function attempt(body: Body, values: Values): { ok: true } | { ok: false; param: string | null; code: string | null; message: string } {
  try {
    body.parse(values);
    return { ok: true };
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return { ok: false, param: e.param, code: e.code, message: e.message };
  }
}

/**
 * The smallest request the document allows for a family: its model and required fields, taking from each "one of"
 * group `chosen` where it is a member, else the group's first name.
 */
function minimalValues(body: Body, family: Family, chosen?: string): Values {
  const schema = bodySchema(body);
  const names = [...(schema.required as string[])];
  for (const group of (schema.allOf as Array<{ anyOf: Array<{ required?: string[] }> }> | undefined) ?? []) {
    const members = group.anyOf.flatMap((s) => s.required ?? []);
    names.push(chosen !== undefined && members.includes(chosen) ? chosen : members[0]);
  }
  const values: Values = { model: MODEL_OF[family] };
  for (const name of names) values[name] = sampleValues(properties(body)[name])[0];
  return values;
}

function enumOf(schema: Schema): unknown[] | undefined {
  const list = (schema.enum as unknown[] | undefined) ?? (schema.anyOf as Schema[] | undefined)?.find((s) => Array.isArray(s.enum))?.enum;
  return (list as unknown[] | undefined)?.filter((v) => v !== null);
}

/** Values the schema documents as valid: its default, its enum, else one value of its type at its lower bound. */
function sampleValues(schema: Schema): unknown[] {
  const out: unknown[] = [];
  if ('default' in schema) out.push(schema.default);
  const values = enumOf(schema);
  if (values) return [...new Set([...out, ...values])];
  if (out.length > 0) return out;
  const type = ([schema.type].flat() as string[]).find((t) => t !== 'null');
  const items = schema.items as Schema | undefined;
  switch (type) {
    case 'integer':
    case 'number':
      return [schema.minimum ?? 1];
    case 'boolean':
      return [true];
    case 'string':
      return [schema.format === 'binary' ? FILE : 'a'];
    case 'object':
      return [IMAGE_REF];
    case 'array':
      return [[items?.format === 'binary' ? FILE : IMAGE_REF]];
    default:
      throw new Error(`no sample for schema ${JSON.stringify(schema)}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Ajv: strict JSON Schema 2020-12, OpenAPI's `binary` format, Easel's x- keywords, component refs.

const COMPONENTS_ID = 'https://easel.invalid/components';

function withComponentRefs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withComponentRefs);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', `${COMPONENTS_ID}#/$defs/`) : withComponentRefs(v),
    ]),
  );
}

function strictAjv(): Ajv2020 {
  // strictRequired stays off: an "image or image[]" group names properties of its parent, which that check cannot see.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  ajv.addVocabulary(['x-easel-families', 'x-easel-extension', 'x-easel-default-only']);
  ajv.addFormat('binary', true);
  ajv.addSchema({ $id: COMPONENTS_ID, $defs: withComponentRefs(doc.components.schemas) as Record<string, Schema> });
  return ajv;
}
const ajv = strictAjv();
const validators = new Map<Schema, ValidateFunction>();
function validatorFor(schema: Schema): ValidateFunction {
  let v = validators.get(schema);
  if (!v) {
    v = ajv.compile(withComponentRefs(schema) as Schema);
    validators.set(schema, v);
  }
  return v;
}
function schemaErrors(schema: Schema, value: unknown): string[] {
  const v = validatorFor(schema);
  return v(value) ? [] : (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

// ---------------------------------------------------------------------------------------------------

describe('the document is OpenAPI 3.1', () => {
  const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ path, method, op })),
  );

  it('names the version, info and one operation per route', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'Easel', version: pkg.version });
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/metrics',
        '/readyz',
        '/v1/images/edits',
        '/v1/images/files/{file}',
        '/v1/images/generations',
        '/v1/images/variations',
        '/v1/models',
        '/v1/models/{id}',
        '/v1/organization/usage/images',
      ].sort(),
    );
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations) {
      expect(['get', 'post'], path).toContain(method);
      expect(typeof op.operationId, path).toBe('string');
      expect(Object.keys(op.responses).length, path).toBeGreaterThan(0);
      for (const res of Object.values(op.responses)) expect(typeof res.description, `${path} response`).toBe('string');
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(declared.sort(), path).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort());
    }
  });

  it('every schema compiles under strict JSON Schema 2020-12 and every $ref resolves', () => {
    const schemas: Schema[] = Object.values(doc.components.schemas);
    for (const { op } of operations) {
      for (const media of Object.values(op.requestBody?.content ?? {})) schemas.push(media.schema);
      for (const res of Object.values(op.responses))
        for (const media of Object.values(res.content ?? {})) if (media.schema) schemas.push(media.schema);
      for (const p of op.parameters ?? []) schemas.push(p.schema);
    }
    expect(schemas.length).toBeGreaterThan(10);
    for (const s of schemas) expect(() => validatorFor(s)).not.toThrow();
  });

  it('multipart encodings name documented file fields', () => {
    for (const body of BODIES.filter((b) => b.mediaType === 'multipart/form-data')) {
      const encoding = doc.paths[body.path].post.requestBody!.content[body.mediaType].encoding ?? {};
      expect(Object.keys(encoding).length, body.label).toBeGreaterThan(0);
      for (const name of Object.keys(encoding)) expect(properties(body), body.label).toHaveProperty([name]);
    }
  });
});

describe('each endpoint documents exactly the fields its parser accepts', () => {
  it.each(BODIES)('$label: the minimal documented request is valid for every family', (body) => {
    for (const family of body.families) {
      const values = minimalValues(body, family);
      expect(schemaErrors(bodySchema(body), values), `${family}`).toEqual([]);
      expect(attempt(body, values), `${family}`).toEqual({ ok: true });
    }
  });

  it.each(BODIES)('$label: every documented field is accepted by the families it names, refused by the others', (body) => {
    for (const [name, schema] of Object.entries(properties(body))) {
      if (name === 'model') continue;
      const accepting = familiesOf(body, name);
      const samples = sampleValues(schema);
      const acceptedSomewhere = new Set<unknown>();
      for (const family of body.families) {
        const results = samples.map((value) => {
          const values = { ...minimalValues(body, family, name), [name]: value };
          const result = attempt(body, values);
          if (result.ok) {
            acceptedSomewhere.add(value);
            expect(schemaErrors(bodySchema(body), values), `${name}=${JSON.stringify(value)} for ${family}`).toEqual([]);
          }
          return result;
        });
        if (accepting.includes(family)) {
          expect(
            results.some((r) => r.ok),
            `${body.label}: ${family} should accept '${name}' (${JSON.stringify(results)})`,
          ).toBe(true);
        } else {
          for (const r of results) expect(r, `${body.label}: ${family} should refuse '${name}'`).toMatchObject({ ok: false, param: name });
        }
      }
      // Every documented value is one some family takes (an enum may not promise what no parser accepts).
      for (const value of samples) expect(acceptedSomewhere.has(value), `${body.label}: ${name}=${JSON.stringify(value)}`).toBe(true);
    }
  });

  it.each(BODIES)('$label: every documented model name is served here, and the others are refused', (body) => {
    const documented = enumOf(properties(body).model) as string[];
    for (const m of MODELS) {
      const values = { ...minimalValues(body, m.family), model: m.id };
      if (documented.includes(m.id)) expect(attempt(body, values), m.id).toEqual({ ok: true });
      else expect(attempt(body, values), m.id).toMatchObject({ ok: false, param: 'model' });
    }
    expect(documented.length).toBeGreaterThan(0);
  });

  // Every field name anyone documents: OpenAI's request schemas, Easel's other bodies, the extensions, and a stranger.
  const openaiSpec = parseYaml(readFileSync(new URL('../fixtures/openai/openai-openapi-images.yaml', import.meta.url), 'utf8')) as {
    components: { schemas: Record<string, { properties?: Record<string, Schema> }> };
  };
  const openaiProps = ['CreateImageRequest', 'CreateImageEditRequest', 'EditImageBodyJsonParam', 'CreateImageVariationRequest'].flatMap(
    (s) => Object.entries(openaiSpec.components.schemas[s].properties ?? {}),
  );
  const openaiNames = openaiProps.map(([name]) => name);
  const everyName = [
    ...new Set([...openaiNames, ...BODIES.flatMap((b) => Object.keys(properties(b))), ...EXTENSION_FIELDS, 'not_a_field']),
  ];
  /** OpenAI's default, example and enum values for a field. */
  const openaiValues = (schema: Schema): unknown[] =>
    [
      schema.default,
      schema.example,
      ...((schema.enum as unknown[]) ?? []),
      ...((schema.anyOf as Schema[] | undefined) ?? []).flatMap(openaiValues),
    ].filter((v) => v !== undefined && v !== null);
  /**
   * Values a client could mean for a name: what any Easel body documents for it and what OpenAI's spec gives, so an
   * undocumented field the parser reads is sent a value it takes (a bad value would be refused too, hiding the drift).
   */
  const valuesFor = (name: string): unknown[] => {
    const easel = BODIES.map((b) => properties(b)[name])
      .filter((s): s is Schema => s !== undefined)
      .flatMap(sampleValues);
    const openai = openaiProps.filter(([n]) => n === name).flatMap(([, schema]) => openaiValues(schema));
    const all = [...new Set([...easel, ...openai])];
    return all.length > 0 ? all : ['a'];
  };

  it.each(BODIES)('$label: every field name it does not document is refused, naming the field', (body) => {
    expect(openaiNames).toContain('model');
    for (const family of body.families) {
      for (const name of everyName) {
        if (name in properties(body) && familiesOf(body, name).includes(family)) continue;
        for (const value of valuesFor(name)) {
          const result = attempt(body, { ...minimalValues(body, family, name), [name]: value });
          expect(result, `${body.label}: ${family} accepts undocumented '${name}'=${JSON.stringify(value)}`).toMatchObject({
            ok: false,
            param: name,
          });
        }
      }
    }
  });

  it.each(BODIES)('$label: families marked x-easel-default-only take the default and refuse any other value', (body) => {
    const marked = Object.entries(properties(body)).filter(([, schema]) => schema['x-easel-default-only']);
    if (body.label === 'generations' || body.label === 'edits (multipart)')
      expect(marked.map(([n]) => n)).toEqual(['stream', 'partial_images']);
    for (const [name, schema] of marked) {
      // a non-default value the field's type allows: true for stream, the maximum for partial_images
      const other = [schema.type].flat().includes('boolean') ? !schema.default : schema.maximum;
      for (const family of schema['x-easel-default-only'] as Family[]) {
        const base = minimalValues(body, family, name);
        expect(attempt(body, { ...base, [name]: schema.default }), `${name} default for ${family}`).toEqual({ ok: true });
        expect(attempt(body, { ...base, [name]: other }), `${name}=${other} for ${family}`).toMatchObject({
          ok: false,
          param: name,
          code: 'unsupported_value',
        });
      }
    }
  });

  it('multipart edits document indexed image parts (image[0], image[1], ...), which the parser accepts', () => {
    const body = BODIES[1];
    const patterns = Object.keys(bodySchema(body).patternProperties as Schema);
    expect(patterns.some((p) => new RegExp(p).test('image[0]'))).toBe(true);
    const values = { prompt: 'a', model: 'gpt-image-1', 'image[0]': FILE, 'image[1]': FILE };
    expect(schemaErrors(bodySchema(body), values)).toEqual([]);
    expect(attempt(body, values)).toEqual({ ok: true });
  });

  it('the scheduler enum is the engine list, and extensions are marked and listed on every endpoint', async () => {
    const { SCHEDULER_NAMES } = await import('../../src/engine/schedulers/names.js');
    for (const body of BODIES) {
      const props = properties(body);
      expect(enumOf(props.scheduler), body.label).toEqual([...SCHEDULER_NAMES]);
      const marked = Object.keys(props).filter((n) => props[n]['x-easel-extension'] === true);
      expect(marked, body.label).toEqual([...EXTENSION_FIELDS]);
    }
  });
});

describe('what the served names change', () => {
  const gen = (d: ReturnType<typeof openApiDocument>) =>
    (d as typeof doc).paths['/v1/images/generations'].post.requestBody!.content['application/json'].schema;

  it('the default names (OPENAI_MODEL_FAMILIES) are listed per endpoint, the newest ones included', () => {
    const d = openApiDocument(Object.entries(OPENAI_MODEL_FAMILIES).map(([id, family]) => ({ id, family }))) as typeof doc;
    const models = (path: string, media: string) =>
      enumOf((d.paths[path].post.requestBody!.content[media].schema.properties as Record<string, Schema>).model);
    const newest = ['gpt-image-2', 'gpt-image-2-2026-04-21', 'chatgpt-image-latest'];
    for (const [path, media] of [
      ['/v1/images/generations', 'application/json'],
      ['/v1/images/edits', 'multipart/form-data'],
      ['/v1/images/edits', 'application/json'],
    ]) {
      expect(models(path, media), `${path} ${media}`).toEqual(expect.arrayContaining(newest));
    }
    expect(models('/v1/images/variations', 'multipart/form-data')).toEqual(['dall-e-2']);
    const size = (gen(d).properties as Record<string, Schema>).size;
    expect(size.description).toMatch(
      /gpt-image-2, gpt-image-2-2026-04-21 also take WIDTHxHEIGHT: both multiples of 16, edges at most 3840/,
    );
    expect(schemaErrors(gen(d), { prompt: 'a', model: 'gpt-image-2-2026-04-21', size: '3840x2160' })).toEqual([]);
  });

  it('gpt-image-2 flexible sizes are documented only when such a name is served', () => {
    const flexible = { prompt: 'a', model: 'gpt-image-2', size: '1824x1024' };
    expect(schemaErrors(gen(doc), flexible)).toEqual([]);
    expect(attempt(BODIES[0], flexible)).toEqual({ ok: true });
    expect(attempt(BODIES[0], { ...flexible, model: 'chatgpt-image-latest' })).toMatchObject({ ok: false, param: 'size' });
    const fixedOnly = openApiDocument(MODELS.filter((m) => m.id !== 'gpt-image-2'));
    expect(strictAjv().validate(withComponentRefs(gen(fixedOnly)) as Schema, { prompt: 'a', size: '1824x1024' })).toBe(false);
  });

  it('plain names (no families) are listed on every endpoint', () => {
    const d = openApiDocument(['easel-default', 'dall-e-2']) as typeof doc;
    const variations = d.paths['/v1/images/variations'].post.requestBody!.content['multipart/form-data'].schema;
    expect(enumOf((variations.properties as Record<string, Schema>).model)).toEqual(['easel-default', 'dall-e-2']);
  });
});
