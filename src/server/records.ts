// One usage record per answered image request (model, size, n, quality, tokens, user, status, duration); the
// prompt only when records.storePrompts is on. A failing database never fails the request: it is logged.
import type { FastifyRequest } from 'fastify';
import type { ParsedCommon } from '../contract/common.js';
import type { ServerDeps } from './deps.js';

export async function recordUsage(
  deps: ServerDeps,
  req: FastifyRequest,
  parsed: ParsedCommon,
  endpoint: string,
  /** performance.now() when the request started. */
  started: number,
  status: number,
  tokens: { input: number; output: number },
): Promise<void> {
  try {
    await deps.db.recordUsage({
      requestId: req.id,
      keyId: req.apiKeyId ?? null,
      endpoint,
      model: parsed.requested_model,
      servedModel: deps.models.resolve(parsed.model)?.local.name ?? parsed.model,
      size: parsed.resolved.size,
      n: parsed.n,
      quality: parsed.resolved.quality,
      inputTokens: tokens.input,
      outputTokens: tokens.output,
      user: parsed.user,
      durationMs: Math.round(performance.now() - started),
      status,
      prompt: deps.config.records.storePrompts ? parsed.prompt : null,
      createdAt: deps.now(),
    });
  } catch (err) {
    req.log.error({ err }, 'could not record usage');
  }
}
