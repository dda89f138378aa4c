// The request fields of each Images endpoint: wire type, allowed values, limits, default and which model families
// accept it. The parsers take their field lists, limits and defaults from here; GET /openapi.json is generated from it.

import { SCHEDULER_NAMES } from '../engine/schedulers/names.js';
import {
  BACKGROUNDS,
  type Background,
  DEFAULT_EXTENSION_LIMITS,
  type ExtensionField,
  editImageLimits,
  type Family,
  type FamilyRules,
  INPUT_FIDELITIES,
  type InputFidelity,
  MODERATIONS,
  type Moderation,
  OUTPUT_COMPRESSION_DEFAULT,
  OUTPUT_FORMATS,
  type OutputFormat,
  PARTIAL_IMAGES_MAX,
  RESPONSE_FORMATS,
  SEED_MAX,
  STYLES,
} from './families.js';

export type Endpoint = 'generations' | 'edits-multipart' | 'edits-json' | 'variations';

/**
 * `model`: a served model name. `file`/`file-list`: multipart file parts. `image-ref`/`image-ref-list`: the JSON
 * edits form's `{image_url}` objects.
 */
export type FieldType = 'model' | 'string' | 'integer' | 'number' | 'boolean' | 'file' | 'file-list' | 'image-ref' | 'image-ref-list';

export type FieldValue = string | number | boolean;

export interface RequestField {
  readonly name: string;
  readonly type: FieldType;
  /** Explicit JSON null means "use the default" (the spec's nullable fields); otherwise null is a type error. */
  readonly nullable: boolean;
  readonly description: string;
  /** The strings a family accepts (absent: any string). */
  readonly valuesFor?: (rules: FamilyRules) => readonly string[];
  /** What an absent (or null) field means for a family. */
  readonly defaultFor?: (rules: FamilyRules) => FieldValue | null;
  /** Bounds of a number; a family may accept less (`familyMaxFor`). */
  readonly min?: number;
  readonly max?: number;
  readonly familyMaxFor?: (rules: FamilyRules) => number;
  readonly minLength?: number;
  readonly maxLengthFor?: (rules: FamilyRules) => number;
  /** Most entries of a list (file-list, image-ref-list) for a family. */
  readonly maxItemsFor?: (family: Family) => number;
  /** Files and image refs: an input image (editImageLimits' types and bytes) or a mask (png, maskMaxBytes). */
  readonly upload?: 'image' | 'mask';
  /** Other wire names accepted for this field (multipart image[0], image[1], ... for image[]). */
  readonly alsoNamed?: RegExp;
}

/** ImageRefParam.image_url maxLength in the spec. */
export const IMAGE_URL_MAX_LENGTH = 20_971_520;

export const PROMPT = {
  name: 'prompt',
  type: 'string',
  nullable: false,
  description: 'What the images should show.',
  minLength: 1,
  maxLengthFor: (rules) => rules.promptMaxLength,
} as const satisfies RequestField;

export const MODEL = {
  name: 'model',
  type: 'model',
  nullable: true,
  description: 'A served model name (GET /v1/models); its family decides which other fields apply. Omitted or null: the endpoint default.',
} as const satisfies RequestField;

export const N = {
  name: 'n',
  type: 'integer',
  nullable: true,
  description: 'How many images to make.',
  min: 1,
  max: 10,
  familyMaxFor: (rules) => rules.nMax,
  defaultFor: () => 1,
} as const satisfies RequestField;

export const SIZE = {
  name: 'size',
  type: 'string',
  nullable: true,
  description: 'WIDTHxHEIGHT in pixels, or auto (the aspect ratio nearest the first input image, else square).',
  valuesFor: (rules) => rules.sizes,
  defaultFor: (rules) => rules.defaultSize,
} as const satisfies RequestField;

export const QUALITY = {
  name: 'quality',
  type: 'string',
  nullable: true,
  description: 'Quality preset; auto is standard for DALL·E models and medium for GPT image models.',
  valuesFor: (rules) => rules.qualities,
  defaultFor: (rules) => rules.defaultQuality,
} as const satisfies RequestField;

/** Multipart edits' `quality`: the spec's edit enum has `standard` for GPT models as well (there it means medium). */
export const EDIT_QUALITY = {
  ...QUALITY,
  description: 'Quality preset; auto is standard for dall-e-2 and medium for GPT image models, where standard means medium too.',
  valuesFor: (rules) => rules.editQualities,
} as const satisfies RequestField;

export const RESPONSE_FORMAT = {
  name: 'response_format',
  type: 'string',
  nullable: true,
  description: 'url: a signed link (valid images.urlTtlSeconds, an hour by default); b64_json: the image inline.',
  valuesFor: () => RESPONSE_FORMATS,
  defaultFor: (rules) => rules.defaultResponseFormat,
} as const satisfies RequestField;

export const STYLE = {
  name: 'style',
  type: 'string',
  nullable: true,
  description: 'Look of the images.',
  valuesFor: () => STYLES,
  defaultFor: (rules) => rules.defaultStyle,
} as const satisfies RequestField;

export const OUTPUT_FORMAT = {
  name: 'output_format',
  type: 'string',
  nullable: true,
  description: 'Encoding of the returned images.',
  valuesFor: () => OUTPUT_FORMATS,
  defaultFor: (): OutputFormat => 'png',
} as const satisfies RequestField;

export const OUTPUT_COMPRESSION = {
  name: 'output_compression',
  type: 'integer',
  nullable: true,
  description: 'Compression level for jpeg and webp output (png accepts only 100).',
  min: 0,
  max: 100,
  defaultFor: () => OUTPUT_COMPRESSION_DEFAULT,
} as const satisfies RequestField;

export const BACKGROUND = {
  name: 'background',
  type: 'string',
  nullable: true,
  description: 'transparent needs png or webp output and a model that makes alpha.',
  valuesFor: () => BACKGROUNDS,
  defaultFor: (): Background => 'auto',
} as const satisfies RequestField;

export const MODERATION = {
  name: 'moderation',
  type: 'string',
  nullable: true,
  description: "The prompt check: auto runs the server's word filter, low only the categories it lists in moderation.lowCategories.",
  valuesFor: () => MODERATIONS,
  defaultFor: (): Moderation => 'auto',
} as const satisfies RequestField;

export const STREAM = {
  name: 'stream',
  type: 'boolean',
  nullable: true,
  description: 'Answer with text/event-stream: partial images, then the completed ones (GPT image models).',
  defaultFor: () => false,
} as const satisfies RequestField;

export const PARTIAL_IMAGES = {
  name: 'partial_images',
  type: 'integer',
  nullable: true,
  description: 'Partial images streamed before each final one (with stream: true; without it none are made).',
  min: 0,
  max: PARTIAL_IMAGES_MAX,
  defaultFor: () => 0,
} as const satisfies RequestField;

export const USER = {
  name: 'user',
  type: 'string',
  nullable: false,
  description: 'An end-user id, kept in the request record.',
} as const satisfies RequestField;

export const INPUT_FIDELITY = {
  name: 'input_fidelity',
  type: 'string',
  nullable: true,
  description: 'How closely to keep the input images (refused by gpt-image-1-mini and the gpt-image-2 names).',
  valuesFor: () => INPUT_FIDELITIES,
  defaultFor: (): InputFidelity => 'low',
} as const satisfies RequestField;

export const IMAGE_FILE = {
  name: 'image',
  type: 'file',
  nullable: false,
  description: 'The image to edit.',
  upload: 'image',
} as const satisfies RequestField;

export const IMAGE_FILES = {
  name: 'image[]',
  type: 'file-list',
  nullable: false,
  description: 'Several input images (also sent as image[0], image[1], ...): the first is edited, the others are context.',
  maxItemsFor: (family) => editImageLimits(family).maxImages,
  upload: 'image',
  alsoNamed: /^image\[\d+\]$/,
} as const satisfies RequestField;

export const MASK_FILE = {
  name: 'mask',
  type: 'file',
  nullable: false,
  description: 'Alpha mask the size of the first image: fully transparent pixels are repainted.',
  upload: 'mask',
} as const satisfies RequestField;

export const IMAGES = {
  name: 'images',
  type: 'image-ref-list',
  nullable: false,
  description: 'Input images as {image_url}: the first is edited, the others are context. file_id is refused (Easel has no Files API).',
  maxItemsFor: (family) => editImageLimits(family).maxImages,
  upload: 'image',
} as const satisfies RequestField;

export const MASK_REF = {
  name: 'mask',
  type: 'image-ref',
  nullable: true,
  description: 'Alpha mask as {image_url}, the size of the first image: fully transparent pixels are repainted.',
  upload: 'mask',
} as const satisfies RequestField;

export const VARIATION_IMAGE = {
  name: 'image',
  type: 'file',
  nullable: false,
  description: 'The image to vary.',
  upload: 'image',
} as const satisfies RequestField;

/** Easel's extension fields; a served model accepts those GET /v1/models lists for it, within its own limits. */
export const EXTENSION_REQUEST_FIELDS = {
  seed: {
    name: 'seed',
    type: 'integer',
    nullable: true,
    description: 'Easel extension: seed of image 0 (image i uses seed + i); same seed, same image.',
    min: 0,
    max: SEED_MAX,
  },
  negative_prompt: {
    name: 'negative_prompt',
    type: 'string',
    nullable: true,
    description: 'Easel extension: what the images should not show.',
    maxLengthFor: (rules) => rules.promptMaxLength,
  },
  num_inference_steps: {
    name: 'num_inference_steps',
    type: 'integer',
    nullable: true,
    description: 'Easel extension: denoising steps, overriding the quality preset (a model may allow fewer).',
    ...DEFAULT_EXTENSION_LIMITS.num_inference_steps,
  },
  guidance_scale: {
    name: 'guidance_scale',
    type: 'number',
    nullable: true,
    description: 'Easel extension: classifier-free guidance scale, overriding the quality preset (a model may allow less).',
    ...DEFAULT_EXTENSION_LIMITS.guidance_scale,
  },
  scheduler: {
    name: 'scheduler',
    type: 'string',
    nullable: true,
    description: 'Easel extension: the sampling algorithm.',
    valuesFor: () => SCHEDULER_NAMES,
  },
} as const satisfies Record<ExtensionField, RequestField>;

export interface EndpointField {
  readonly field: RequestField;
  /** Families that accept the field here. */
  readonly families: readonly Family[];
  /**
   * Families that accept the field only with its default (or null), a value that changes nothing: generic clients send
   * `stream: false` to every model. Any other value is refused as unsupported_value.
   */
  readonly defaultOnlyFor?: readonly Family[];
}

export interface EndpointSpec {
  /** Families the endpoint serves; a model of another family is refused. */
  readonly families: readonly Family[];
  readonly fields: readonly EndpointField[];
  /** Required fields; an inner list means "one of these". */
  readonly required: readonly (string | readonly string[])[];
}

const ALL: readonly Family[] = ['dall-e-2', 'dall-e-3', 'gpt-image'];
const DALL_E: readonly Family[] = ['dall-e-2', 'dall-e-3'];
const DALL_E_2: readonly Family[] = ['dall-e-2'];
const DALL_E_3: readonly Family[] = ['dall-e-3'];
const GPT: readonly Family[] = ['gpt-image'];
const EDIT_FAMILIES: readonly Family[] = ['dall-e-2', 'gpt-image'];

/** The GPT image models' output options ("a parameter specific to the GPT image models"). */
const GPT_OPTIONS: readonly RequestField[] = [OUTPUT_FORMAT, OUTPUT_COMPRESSION, BACKGROUND, MODERATION];

const accepted = (families: readonly Family[], ...fields: RequestField[]): EndpointField[] => fields.map((field) => ({ field, families }));

/** `stream` and `partial_images`: GPT image models stream; the DALL·E families here take only false / 0 (or null). */
const streaming = (dallE: readonly Family[]): EndpointField[] =>
  [STREAM, PARTIAL_IMAGES].map((field) => ({ field, families: GPT, defaultOnlyFor: dallE }));

export const ENDPOINTS: Readonly<Record<Endpoint, EndpointSpec>> = {
  generations: {
    families: ALL,
    fields: [
      ...accepted(ALL, PROMPT, MODEL, N, SIZE, QUALITY),
      ...accepted(DALL_E, RESPONSE_FORMAT),
      ...accepted(DALL_E_3, STYLE),
      ...accepted(GPT, ...GPT_OPTIONS),
      ...streaming(DALL_E),
      ...accepted(ALL, USER),
    ],
    required: ['prompt'],
  },
  'edits-multipart': {
    families: EDIT_FAMILIES,
    fields: [
      ...accepted(EDIT_FAMILIES, IMAGE_FILE, IMAGE_FILES, MASK_FILE, PROMPT, MODEL, N, SIZE, EDIT_QUALITY),
      ...accepted(DALL_E_2, RESPONSE_FORMAT),
      ...accepted(GPT, ...GPT_OPTIONS),
      ...streaming(DALL_E_2),
      ...accepted(GPT, INPUT_FIDELITY),
      ...accepted(EDIT_FAMILIES, USER),
    ],
    required: [['image', 'image[]'], 'prompt'],
  },
  'edits-json': {
    families: GPT,
    fields: accepted(GPT, IMAGES, MASK_REF, PROMPT, MODEL, N, SIZE, QUALITY, INPUT_FIDELITY, ...GPT_OPTIONS, STREAM, PARTIAL_IMAGES, USER),
    required: ['images', 'prompt'],
  },
  variations: {
    families: DALL_E_2,
    fields: accepted(DALL_E_2, VARIATION_IMAGE, MODEL, N, SIZE, RESPONSE_FORMAT, USER),
    required: ['image'],
  },
};

/** Whether a family accepts the field at all (with any value, or only its default). */
export function acceptsField(f: EndpointField, family: Family): boolean {
  return f.families.includes(family) || (f.defaultOnlyFor?.includes(family) ?? false);
}

/** Request fields (besides extensions) a family accepts on an endpoint. */
export function allowedFields(family: Family, endpoint: Endpoint): readonly string[] {
  return ENDPOINTS[endpoint].fields.filter((f) => acceptsField(f, family)).map((f) => f.field.name);
}

/** Text (non-file) fields of a multipart endpoint a family accepts. */
export function allowedTextFields(family: Family, endpoint: Endpoint): readonly string[] {
  return ENDPOINTS[endpoint].fields
    .filter((f) => acceptsField(f, family) && f.field.type !== 'file' && f.field.type !== 'file-list')
    .map((f) => f.field.name);
}

/**
 * Generation fields only GPT image models accept: naming one with `model` omitted selects a GPT image model. Fields
 * the DALL·E families take at their default (stream, partial_images) count: the spec calls them GPT-only.
 */
export const GPT_ONLY_GENERATION_FIELDS: readonly string[] = ENDPOINTS.generations.fields
  .filter((f) => f.families.length === 1 && f.families[0] === 'gpt-image')
  .map((f) => f.field.name);
