// GET /v1/organization/usage/images: OpenAI's Usage API for images over Easel's usage records, for admin keys.
// The page's buckets are cut and summed by the database (Db.usageBuckets); this route only frames them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/errors.js';
import {
  BUCKET_SECONDS,
  encodePageCursor,
  PROJECT_ID,
  parseUsageImagesQuery,
  type UsageBucket,
  type UsageImagesQuery,
  type UsageImagesResult,
  type UsagePage,
} from '../../contract/usage-api.js';
import type { UsageBucketRow, UsageGroupField } from '../../db/types.js';
import type { ServerDeps } from '../deps.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Whether the request's API key is an admin key (auth mode 'keys'; set by app.ts's authenticate). */
    apiKeyAdmin?: boolean;
  }
}

export const USAGE_IMAGES_PATH = '/v1/organization/usage/images';

/**
 * OpenAI's answer to a key without the usage scope (its message for a project key on an admin endpoint). With
 * auth.mode "none" there are no keys, and the Usage API is as open as every other endpoint.
 */
function needsAdminKey(): ApiError {
  return new ApiError({
    status: 403,
    message:
      'You have insufficient permissions for this operation. Missing scopes: api.usage.read. This endpoint needs an admin API key (easel keys create NAME --admin).',
    type: 'invalid_request_error',
    code: 'insufficient_permissions',
  });
}

export function registerUsageRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get(USAGE_IMAGES_PATH, async (req: FastifyRequest) => {
    if (deps.config.auth.mode === 'keys' && req.apiKeyAdmin !== true) throw needsAdminKey();
    const query = parseUsageImagesQuery((req.query ?? {}) as Record<string, unknown>);
    return usagePage(deps, query);
  });
}

/** The grouped fields the database sums by (project_id is constant: Easel has one project). */
function dbGroups(q: UsageImagesQuery): UsageGroupField[] {
  return q.group_by.filter((g): g is UsageGroupField => g !== 'project_id');
}

/** One page: up to `limit` consecutive buckets from the page start, every one listed even when empty. */
export async function usagePage(deps: ServerDeps, q: UsageImagesQuery): Promise<UsagePage> {
  const width = BUCKET_SECONDS[q.bucket_width];
  const end = q.end_time ?? Math.ceil(deps.now() / 1000);
  const first = q.page_start ?? q.start_time;
  const count = Math.max(0, Math.min(q.limit, Math.ceil((end - first) / width)));
  const pageEnd = Math.min(end, first + count * width);
  const otherProject = q.project_ids.length > 0 && !q.project_ids.includes(PROJECT_ID);
  const rows =
    count === 0 || otherProject
      ? []
      : await deps.db.usageBuckets({
          startMs: first * 1000,
          endMs: pageEnd * 1000,
          widthMs: width * 1000,
          sources: q.sources,
          sizes: q.sizes,
          models: q.models,
          userIds: q.user_ids,
          apiKeyIds: q.api_key_ids,
          groupBy: dbGroups(q),
        });
  const data: UsageBucket[] = [];
  for (let i = 0; i < count; i++) {
    const start = first + i * width;
    const results = rows.filter((r) => r.bucketStartMs === start * 1000).map((r) => result(r, q.group_by.includes('project_id')));
    data.push({ object: 'bucket', start_time: start, end_time: Math.min(start + width, end), results });
  }
  const hasMore = pageEnd < end;
  return { object: 'page', data, has_more: hasMore, next_page: hasMore ? encodePageCursor(pageEnd) : null };
}

function result(r: UsageBucketRow, byProject: boolean): UsageImagesResult {
  return {
    object: 'organization.usage.images.result',
    images: r.images,
    num_model_requests: r.requests,
    source: r.source,
    size: r.size,
    project_id: byProject ? PROJECT_ID : null,
    user_id: r.userId,
    api_key_id: r.apiKeyId,
    model: r.model,
  };
}
