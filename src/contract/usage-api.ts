// The wire contract of OpenAI's Usage API for images (GET /v1/organization/usage/images): its query parameters,
// checked into a typed query (400 naming the parameter otherwise), the opaque page cursor, and the response shapes.
import {
  ApiError,
  arrayTooLong,
  badRequest,
  integerAboveMax,
  integerBelowMin,
  invalidType,
  invalidTypeUnconvertible,
  invalidValue,
  missingRequired,
} from './errors.js';

export const BUCKET_WIDTHS = ['1m', '1h', '1d'] as const;
export type BucketWidth = (typeof BUCKET_WIDTHS)[number];
export const USAGE_SOURCES = ['image.generation', 'image.edit', 'image.variation'] as const;
export const USAGE_GROUP_BY = ['project_id', 'user_id', 'api_key_id', 'model', 'size', 'source'] as const;
export type UsageGroupBy = (typeof USAGE_GROUP_BY)[number];

/** Seconds per bucket, and `limit`'s default and maximum for each width (as the spec documents them). */
export const BUCKET_SECONDS: Record<BucketWidth, number> = { '1m': 60, '1h': 3600, '1d': 86_400 };
export const LIMIT_DEFAULT: Record<BucketWidth, number> = { '1m': 60, '1h': 24, '1d': 7 };
export const LIMIT_MAX: Record<BucketWidth, number> = { '1m': 1440, '1h': 168, '1d': 31 };

/** Easel serves one project; usage rows belong to it, and `project_id` reads this id. */
export const PROJECT_ID = 'proj_default';

/** The latest time accepted (9999-12-31T23:59:59Z), so epoch milliseconds stay exact. */
export const MAX_TIME = 253_402_300_799;

/** The most values one filter list takes. */
export const MAX_FILTER_VALUES = 100;

export interface UsageImagesQuery {
  /** Unix seconds, inclusive. */
  start_time: number;
  /** Unix seconds, exclusive; null: up to now. */
  end_time: number | null;
  bucket_width: BucketWidth;
  sources: string[];
  sizes: string[];
  models: string[];
  user_ids: string[];
  api_key_ids: string[];
  project_ids: string[];
  group_by: UsageGroupBy[];
  limit: number;
  /** Start (Unix seconds) of the first bucket of this page, from `page`; null: start_time. */
  page_start: number | null;
}

export interface UsageImagesResult {
  object: 'organization.usage.images.result';
  images: number;
  num_model_requests: number;
  source: string | null;
  size: string | null;
  project_id: string | null;
  user_id: string | null;
  api_key_id: string | null;
  model: string | null;
}

export interface UsageBucket {
  object: 'bucket';
  start_time: number;
  end_time: number;
  results: UsageImagesResult[];
}

export interface UsagePage {
  object: 'page';
  data: UsageBucket[];
  has_more: boolean;
  next_page: string | null;
}

type Raw = Record<string, unknown>;

/**
 * The values of an array parameter in any of the encodings clients use: `name=a&name=b`, `name[]=a` (the openai
 * SDKs), `name[0]=a`, or one comma-free value.
 */
function listParam(raw: Raw, name: string): string[] {
  const values: string[] = [];
  for (const [key, v] of Object.entries(raw)) {
    if (key !== name && !(key.startsWith(`${name}[`) && /^\[\d*\]$/.test(key.slice(name.length)))) continue;
    for (const item of Array.isArray(v) ? v : [v]) values.push(String(item));
  }
  if (values.length > MAX_FILTER_VALUES) throw arrayTooLong(name, MAX_FILTER_VALUES, values.length);
  return values;
}

function oneOf<T extends string>(raw: Raw, name: string, allowed: readonly T[]): T[] {
  const values = listParam(raw, name);
  for (const v of values) if (!allowed.includes(v as T)) throw invalidValue(name, v, allowed);
  return [...new Set(values)] as T[];
}

function scalar(raw: Raw, name: string): string | undefined {
  const v = raw[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalidType(name, 'a single value', v);
  return v;
}

function integerParam(raw: Raw, name: string): number | undefined {
  const v = scalar(raw, name);
  if (v === undefined) return undefined;
  if (!/^-?\d{1,15}$/.test(v.trim())) throw invalidTypeUnconvertible(name, 'integer');
  return Number(v.trim());
}

/** Easel's sizes are WIDTHxHEIGHT (the spec lists OpenAI's; gpt-image sizes such as 1536x1024 are kept too). */
const SIZE_PATTERN = /^\d{1,5}x\d{1,5}$/;

/** The query, checked; a bad parameter is a 400 invalid_request_error naming it. */
export function parseUsageImagesQuery(raw: Raw): UsageImagesQuery {
  const start = integerParam(raw, 'start_time');
  if (start === undefined) throw missingRequired('start_time');
  if (start < 0) throw integerBelowMin('start_time', 0, start);
  if (start > MAX_TIME) throw integerAboveMax('start_time', MAX_TIME, start);
  const end = integerParam(raw, 'end_time') ?? null;
  if (end !== null && end > MAX_TIME) throw integerAboveMax('end_time', MAX_TIME, end);
  if (end !== null && end <= start) throw badRequest(`Invalid 'end_time': it must be after 'start_time' (${start}).`, 'end_time');
  const width = (scalar(raw, 'bucket_width') ?? '1d') as BucketWidth;
  if (!BUCKET_WIDTHS.includes(width)) throw invalidValue('bucket_width', width, BUCKET_WIDTHS);
  const limit = integerParam(raw, 'limit') ?? LIMIT_DEFAULT[width];
  if (limit < 1) throw integerBelowMin('limit', 1, limit);
  if (limit > LIMIT_MAX[width]) throw integerAboveMax('limit', LIMIT_MAX[width], limit);
  const sizes = listParam(raw, 'sizes');
  for (const s of sizes)
    if (!SIZE_PATTERN.test(s)) throw invalidValue('sizes', s, ['256x256', '512x512', '1024x1024', '1792x1792', '1024x1792']);
  const page = scalar(raw, 'page');
  return {
    start_time: start,
    end_time: end,
    bucket_width: width,
    sources: oneOf(raw, 'sources', USAGE_SOURCES),
    sizes,
    models: listParam(raw, 'models'),
    user_ids: listParam(raw, 'user_ids'),
    api_key_ids: listParam(raw, 'api_key_ids'),
    project_ids: listParam(raw, 'project_ids'),
    group_by: oneOf(raw, 'group_by', USAGE_GROUP_BY),
    limit,
    page_start: page === undefined ? null : pageStart(page, start, BUCKET_SECONDS[width]),
  };
}

const CURSOR_PREFIX = 'page_';

/** The opaque `next_page` cursor for a page whose first bucket starts at `bucketStart` (Unix seconds). */
export function encodePageCursor(bucketStart: number): string {
  return CURSOR_PREFIX + Buffer.from(`v1:${bucketStart}`, 'utf8').toString('base64url');
}

/** The bucket start a cursor names; it must be one of this query's bucket boundaries. */
function pageStart(cursor: string, start: number, widthSeconds: number): number {
  const decoded = cursor.startsWith(CURSOR_PREFIX) ? Buffer.from(cursor.slice(CURSOR_PREFIX.length), 'base64url').toString('utf8') : '';
  const m = /^v1:(\d{1,15})$/.exec(decoded);
  const t = m ? Number(m[1]) : Number.NaN;
  if (!Number.isFinite(t) || t < start || (t - start) % widthSeconds !== 0) {
    throw new ApiError({
      status: 400,
      message: "Invalid 'page': not a cursor from this query's 'next_page'.",
      param: 'page',
      code: 'invalid_value',
    });
  }
  return t;
}
