// GET /openapi.json: the OpenAPI 3.1 description of Easel's own API (OpenAI's Images API plus Easel's extensions).
// Request bodies are generated from contract/request-fields.ts, the table the parsers read, so the two cannot drift.

import { EXTENSION_FIELDS, editImageLimits, type Family, type FamilyRules, familyRules, MB } from '../contract/families.js';
import {
  ENDPOINTS,
  type Endpoint,
  type EndpointField,
  type EndpointSpec,
  EXTENSION_REQUEST_FIELDS,
  type FieldValue,
  IMAGE_URL_MAX_LENGTH,
  type RequestField,
} from '../contract/request-fields.js';
import { BUCKET_WIDTHS, LIMIT_DEFAULT, LIMIT_MAX, USAGE_GROUP_BY, USAGE_SOURCES } from '../contract/usage-api.js';
import { EASEL_VERSION } from '../version.js';

type Schema = Record<string, unknown>;
type Wire = 'json' | 'multipart';

/** A served model name, with its family when the caller knows it (then each endpoint lists only the names it serves). */
export type DocumentedModel = string | { readonly id: string; readonly family: Family };

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['message', 'type', 'param', 'code'],
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        param: { type: ['string', 'null'] },
        code: { type: ['string', 'null'] },
      },
    },
  },
};

const imagesResponse = {
  type: 'object',
  required: ['created'],
  properties: {
    created: { type: 'integer' },
    data: {
      type: 'array',
      items: {
        type: 'object',
        properties: { b64_json: { type: 'string' }, url: { type: 'string' }, revised_prompt: { type: 'string' } },
      },
    },
    background: { type: 'string', enum: ['transparent', 'opaque'] },
    output_format: { type: 'string', enum: ['png', 'jpeg', 'webp'] },
    size: { type: 'string', description: "The images' exact WIDTHxHEIGHT, flexible sizes included." },
    quality: { type: 'string' },
    usage: {
      type: 'object',
      properties: {
        input_tokens: { type: 'integer' },
        output_tokens: { type: 'integer' },
        total_tokens: { type: 'integer' },
        input_tokens_details: {
          type: 'object',
          properties: { text_tokens: { type: 'integer' }, image_tokens: { type: 'integer' } },
        },
      },
    },
  },
};

// ---------------------------------------------------------------------------------------------------
// Request bodies, from the contract's field table.

interface BodyContext {
  wire: Wire;
  /** Served names this endpoint may be asked for. */
  modelNames: readonly string[];
  /** The families the endpoint serves. */
  endpointFamilies: readonly Family[];
  /** Served names with gpt-image-2's flexible sizes. */
  flexibleSizeModels: readonly string[];
}

const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];
const sameEverywhere = <T>(values: readonly T[]): boolean => unique(values).length === 1;

/** "a (dall-e-2); b (gpt-image)", or just "a" where every family has the same. */
function perFamily(families: readonly Family[], describe: (family: Family) => string): string {
  const texts = families.map(describe);
  if (sameEverywhere(texts)) return texts[0];
  return families.map((f, i) => `${texts[i]} (${f})`).join('; ');
}

function binary(): Schema {
  return { type: 'string', format: 'binary' };
}

function imageRef(): Schema {
  return {
    type: 'object',
    required: ['image_url'],
    additionalProperties: false,
    properties: {
      image_url: {
        type: 'string',
        minLength: 1,
        maxLength: IMAGE_URL_MAX_LENGTH,
        description: 'A base64 data URL (data:image/png;base64,...) or an http(s) URL.',
      },
    },
  };
}

function uploadLimits(kind: 'image' | 'mask', family: Family): string {
  const limits = editImageLimits(family);
  const megabytes = (bytes: number) => `${bytes / MB} MB`;
  if (kind === 'mask') return `${limits.maskMimetypes.join(', ')} under ${megabytes(limits.maskMaxBytes)}`;
  return `${limits.mimetypes.join(', ')} under ${megabytes(limits.maxImageBytes)}${limits.requireSquare ? ', square' : ''}`;
}

/** The value schema of one field, before nullability: type, enum, bounds, list sizes. */
function valueSchema(field: RequestField, families: readonly Family[], rules: readonly FamilyRules[], ctx: BodyContext): Schema {
  const max = (values: readonly number[]) => Math.max(...values);
  switch (field.type) {
    case 'model':
      return ctx.modelNames.length > 0 ? { type: 'string', enum: [...ctx.modelNames] } : { type: 'string' };
    case 'string': {
      const s: Schema = { type: 'string' };
      if (field.valuesFor) s.enum = unique(rules.flatMap((r) => field.valuesFor!(r)));
      if (field.minLength !== undefined) s.minLength = field.minLength;
      if (field.maxLengthFor) s.maxLength = max(rules.map((r) => field.maxLengthFor!(r)));
      return s;
    }
    case 'integer':
    case 'number': {
      const s: Schema = { type: field.type };
      if (field.min !== undefined) s.minimum = field.min;
      if (field.max !== undefined) s.maximum = field.max;
      return s;
    }
    case 'boolean':
      return { type: 'boolean' };
    case 'file':
      return binary();
    case 'file-list':
      return { type: 'array', items: binary(), minItems: 1, maxItems: max(families.map((f) => field.maxItemsFor!(f))) };
    case 'image-ref':
      return imageRef();
    case 'image-ref-list':
      return { type: 'array', items: imageRef(), minItems: 1, maxItems: max(families.map((f) => field.maxItemsFor!(f))) };
  }
}

/** Sentences for whatever differs between the families that accept a field. */
function familyNotes(field: RequestField, families: readonly Family[], rules: readonly FamilyRules[]): string[] {
  const notes: string[] = [];
  const byFamily = (fn: (r: FamilyRules) => string) => perFamily(families, (f) => fn(rules[families.indexOf(f)]));
  const varies = (fn: (r: FamilyRules) => unknown) => !sameEverywhere(rules.map(fn));
  const { valuesFor, defaultFor, maxLengthFor, familyMaxFor, maxItemsFor, upload } = field;
  if (valuesFor && varies((r) => valuesFor(r).join())) notes.push(`Values: ${byFamily((r) => valuesFor(r).join(', '))}.`);
  if (defaultFor && varies(defaultFor)) notes.push(`Default: ${byFamily((r) => String(defaultFor(r)))}.`);
  if (maxLengthFor && varies(maxLengthFor)) notes.push(`Maximum length: ${byFamily((r) => String(maxLengthFor(r)))}.`);
  if (familyMaxFor && rules.some((r) => familyMaxFor(r) !== field.max)) notes.push(`Maximum: ${byFamily((r) => String(familyMaxFor(r)))}.`);
  if (maxItemsFor && !sameEverywhere(families.map(maxItemsFor)))
    notes.push(`At most: ${perFamily(families, (f) => String(maxItemsFor(f)))}.`);
  if (upload) notes.push(`Accepted: ${perFamily(families, (f) => uploadLimits(upload, f))}.`);
  return notes;
}

/** gpt-image-2's WIDTHxHEIGHT sizes, beside the fixed list, where a served name has them. */
function withFlexibleSize(schema: Schema, ctx: BodyContext, families: readonly Family[]): { schema: Schema; note?: string } {
  const models = ctx.flexibleSizeModels;
  if (models.length === 0 || !families.includes('gpt-image')) return { schema };
  const rule = familyRules('gpt-image', models[0]).flexibleSize!;
  const { enum: fixed, ...rest } = schema;
  return {
    schema: { ...rest, anyOf: [{ enum: fixed }, { pattern: '^[0-9]+x[0-9]+$' }] },
    note:
      `${models.join(', ')} also take WIDTHxHEIGHT: both multiples of ${rule.multipleOf}, edges at most ${rule.maxEdge}, ` +
      `aspect ratio at most ${rule.maxAspectRatio}:1, ${rule.minPixels} to ${rule.maxPixels} pixels.`,
  };
}

/** Lets JSON null through (nullable fields: "use the default"); multipart has no null. */
function allowNull(schema: Schema): Schema {
  const s = { ...schema };
  s.type = [s.type, 'null'];
  if (Array.isArray(s.enum)) s.enum = [...s.enum, null];
  if (Array.isArray(s.anyOf)) s.anyOf = [...s.anyOf, { type: 'null' }];
  return s;
}

/**
 * One field's schema. `families` take any documented value; `defaultOnly` families take only the default (marked
 * x-easel-default-only).
 */
function propertySchema(field: RequestField, families: readonly Family[], ctx: BodyContext, defaultOnly: readonly Family[] = []): Schema {
  const rules = families.map((f) => familyRules(f));
  let schema = valueSchema(field, families, rules, ctx);
  const notes = familyNotes(field, families, rules);
  if (field.name === 'size') {
    const flexible = withFlexibleSize(schema, ctx, families);
    schema = flexible.schema;
    if (flexible.note) notes.push(flexible.note);
  }
  if (field.nullable && ctx.wire === 'json') schema = allowNull(schema);
  const defaults = field.defaultFor ? unique(rules.map((r) => field.defaultFor!(r))) : [];
  if (defaults.length === 1 && defaults[0] !== null) schema.default = defaults[0] as FieldValue;
  if (defaultOnly.length > 0) {
    const orNull = ctx.wire === 'json' ? ' or null' : '';
    notes.push(`${defaultOnly.join(', ')}: only the default (${JSON.stringify(schema.default)})${orNull}, which changes nothing.`);
    schema['x-easel-default-only'] = [...defaultOnly];
  }
  schema.description = [field.description, ...notes].join(' ');
  const accepting = [...families, ...defaultOnly];
  if (accepting.length < ctx.endpointFamilies.length) schema['x-easel-families'] = accepting;
  return schema;
}

function extensionSchema(field: RequestField, ctx: BodyContext): Schema {
  const schema = propertySchema(field, ctx.endpointFamilies, ctx);
  schema.description = `${schema.description} Accepted only by models whose GET /v1/models entry lists it.`;
  schema['x-easel-extension'] = true;
  return schema;
}

function fileContentTypes(field: RequestField, families: readonly Family[]): string {
  const limits = families.map(editImageLimits);
  return unique(limits.flatMap((l) => (field.upload === 'mask' ? l.maskMimetypes : l.mimetypes))).join(', ');
}

/** Schemas that hold when a field is present: its name, or (JSON Schema's "some name matches") one of its other names. */
function presenceOf(spec: EndpointSpec, name: string): Schema[] {
  const other = spec.fields.find((f) => f.field.name === name)?.field.alsoNamed;
  const named = { required: [name] };
  return other ? [named, { not: { propertyNames: { not: { pattern: other.source } } } }] : [named];
}

/** The request body's media type object: schema, and for multipart the file parts' content types. */
function requestMediaType(endpoint: Endpoint, wire: Wire, models: readonly DocumentedModel[]): Schema {
  const spec = ENDPOINTS[endpoint];
  const servedHere = models.filter((m) => typeof m === 'string' || spec.families.includes(m.family));
  const modelNames = servedHere.map((m) => (typeof m === 'string' ? m : m.id));
  const ctx: BodyContext = {
    wire,
    modelNames,
    endpointFamilies: spec.families,
    flexibleSizeModels: modelNames.filter((name) => familyRules('gpt-image', name).flexibleSize !== null),
  };
  const properties: Record<string, Schema> = {};
  const patternProperties: Record<string, Schema> = {};
  const encoding: Record<string, Schema> = {};
  for (const { field, families, defaultOnlyFor } of spec.fields as readonly EndpointField[]) {
    properties[field.name] = propertySchema(field, families, ctx, defaultOnlyFor);
    if (field.alsoNamed) patternProperties[field.alsoNamed.source] = binary();
    if (wire === 'multipart' && field.upload) encoding[field.name] = { contentType: fileContentTypes(field, families) };
  }
  for (const name of EXTENSION_FIELDS) properties[name] = extensionSchema(EXTENSION_REQUEST_FIELDS[name], ctx);

  const schema: Schema = { type: 'object', required: spec.required.filter((r) => typeof r === 'string'), properties };
  if (Object.keys(patternProperties).length > 0) schema.patternProperties = patternProperties;
  schema.additionalProperties = false;
  const oneOfRequired = spec.required.filter((r) => typeof r !== 'string');
  if (oneOfRequired.length > 0) schema.allOf = oneOfRequired.map((names) => ({ anyOf: names.flatMap((n) => presenceOf(spec, n)) }));
  return Object.keys(encoding).length > 0 ? { schema, encoding } : { schema };
}

// ---------------------------------------------------------------------------------------------------

/**
 * The document. `models` are the served names; given as {id, family} (e.g. ModelRegistry.list()), each endpoint's
 * `model` enum lists only the names whose family it serves.
 */
export function openApiDocument(models: readonly DocumentedModel[]): Record<string, unknown> {
  const errors = {
    '400': { description: 'Invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '401': {
      description: 'Missing or invalid API key (auth mode "keys")',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    },
    '404': { description: 'Unknown model or route', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    '429': {
      description: 'Queue full; see Retry-After',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Easel',
      version: EASEL_VERSION,
      description:
        "Self-hosted image generation speaking OpenAI's Images API. Request rules follow the family of the model " +
        'name (dall-e-2, dall-e-3, gpt-image); a field marked x-easel-families is accepted only by those families, and ' +
        'one marked x-easel-default-only takes only its default on the families listed there. ' +
        'Easel extension fields (x-easel-extension) are listed per model in GET /v1/models.',
    },
    components: {
      securitySchemes: { ApiKeyAuth: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: errorSchema, ImagesResponse: imagesResponse },
    },
    security: [{ ApiKeyAuth: [] }],
    paths: {
      '/v1/images/generations': {
        post: {
          operationId: 'createImage',
          summary: 'Creates images from a prompt. Streams with stream: true (GPT image models).',
          requestBody: {
            required: true,
            content: { 'application/json': requestMediaType('generations', 'json', models) },
          },
          responses: {
            '200': {
              description: 'The generated images (or text/event-stream with stream: true)',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } }, 'text/event-stream': {} },
            },
            ...errors,
          },
        },
      },
      '/v1/images/edits': {
        post: {
          operationId: 'createImageEdit',
          summary:
            'Edits images: image-to-image without a mask, inpainting where the mask is fully transparent. Streams with stream: true.',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': requestMediaType('edits-multipart', 'multipart', models),
              'application/json': requestMediaType('edits-json', 'json', models),
            },
          },
          responses: {
            '200': {
              description: 'The edited images (or text/event-stream with stream: true)',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } }, 'text/event-stream': {} },
            },
            ...errors,
          },
        },
      },
      '/v1/images/variations': {
        post: {
          operationId: 'createImageVariation',
          summary: 'Variations of one square PNG (dall-e-2 family).',
          requestBody: {
            required: true,
            content: { 'multipart/form-data': requestMediaType('variations', 'multipart', models) },
          },
          responses: {
            '200': {
              description: 'The variations',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/ImagesResponse' } } },
            },
            ...errors,
          },
        },
      },
      '/v1/images/files/{file}': {
        get: {
          operationId: 'getImageFile',
          summary: 'Downloads an image from a signed `url` response (valid 60 minutes).',
          security: [],
          parameters: [
            { name: 'file', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'expires', in: 'query', required: true, schema: { type: 'integer' } },
            { name: 'sig', in: 'query', required: true, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'The image bytes', content: { 'image/png': {}, 'image/jpeg': {}, 'image/webp': {} } },
            '403': { description: 'Invalid signature' },
            '404': { description: 'Expired or unknown image' },
          },
        },
      },
      '/v1/models': {
        get: {
          operationId: 'listModels',
          summary: 'Served model names, their family, target and extensions.',
          responses: { '200': { description: 'Model list' } },
        },
      },
      '/v1/models/{id}': {
        get: {
          operationId: 'retrieveModel',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'One model' }, '404': errors['404'] },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary:
            'Prometheus text format 0.0.4 (docs/observability.md). With auth on it needs an admin key, unless metrics.public; ' +
            'with metrics.port it is served on that port instead, without a key.',
          responses: {
            '200': { description: 'The metrics', content: { 'text/plain; version=0.0.4': {} } },
            '401': errors['401'],
            '403': { description: 'A key that is not an admin key', content: errors['401'].content },
          },
        },
      },
      '/v1/organization/usage/images': {
        get: {
          operationId: 'usage-images',
          summary:
            'OpenAI\'s Usage API for images over Easel\'s usage records (README "Usage API"): a page of time buckets. ' +
            "Needs an admin key when auth is on. The response is OpenAI's UsageResponse of organization.usage.images.result rows.",
          parameters: usageParameters(),
          responses: {
            '200': { description: 'A page of buckets', content: { 'application/json': { schema: { type: 'object' } } } },
            '400': errors['400'],
            '401': errors['401'],
            '403': { description: 'A key that is not an admin key', content: errors['401'].content },
            '503': { description: 'The database is unreachable (Retry-After)', content: errors['401'].content },
          },
        },
      },
      '/healthz': { get: { operationId: 'health', security: [], responses: { '200': { description: 'Process alive' } } } },
      '/readyz': {
        get: {
          operationId: 'ready',
          security: [],
          responses: {
            '200': { description: 'Models loaded and warmed' },
            '503': {
              description:
                'Not ready: warming up, draining for shutdown, or the data dir below its free-space reserve (the body says which)',
            },
          },
        },
      },
    },
  };
}

/** The Usage API's query parameters, with the limits src/contract/usage-api.ts enforces. */
function usageParameters(): object[] {
  const list = (name: string, items: object, description: string) => ({
    name,
    in: 'query',
    style: 'form',
    explode: true,
    schema: { type: 'array', items },
    description,
  });
  const widths = BUCKET_WIDTHS.map((w) => `${w}: default ${LIMIT_DEFAULT[w]}, at most ${LIMIT_MAX[w]}`).join('; ');
  return [
    { name: 'start_time', in: 'query', required: true, schema: { type: 'integer' }, description: 'Start (inclusive), Unix seconds' },
    { name: 'end_time', in: 'query', schema: { type: 'integer' }, description: 'End (exclusive), Unix seconds' },
    { name: 'bucket_width', in: 'query', schema: { type: 'string', enum: [...BUCKET_WIDTHS], default: '1d' } },
    list('sources', { type: 'string', enum: [...USAGE_SOURCES] }, 'Only these sources'),
    list('sizes', { type: 'string' }, 'Only these sizes (WIDTHxHEIGHT)'),
    list('models', { type: 'string' }, 'Only these models'),
    list('user_ids', { type: 'string' }, 'Only these `user` values'),
    list('api_key_ids', { type: 'string' }, 'Only these API key ids'),
    list('project_ids', { type: 'string' }, 'Only these projects (Easel has one)'),
    list('group_by', { type: 'string', enum: [...USAGE_GROUP_BY] }, 'Fields to group each bucket by'),
    { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 }, description: `Buckets per page (${widths})` },
    { name: 'page', in: 'query', schema: { type: 'string' }, description: 'The next_page cursor of the previous page' },
  ];
}
