// POST /v1/images/generations: turns a JSON body into a validated, default-filled request for the
// resolved model's family, or throws the ApiError OpenAI would answer.
//
// Spec: CreateImageRequest in test/fixtures/openai/openai-openapi-images.yaml. Omitted `model` follows
// its rule: "Defaults to `dall-e-2` unless a parameter specific to the GPT image models is used".

import {
  type ParsedCommon,
  readExtensions,
  readGptOptions,
  readN,
  readPrompt,
  readQuality,
  readResponseFormat,
  readSize,
  readStyle,
  readUser,
  rejectUnknownKeys,
  resolveModelField,
  resolveOutput,
} from './common.js';
import { bodyNotObject } from './errors.js';
import { familyRules, type ParseContext, type Style } from './families.js';
import { isPlainObject, jsonReader } from './fields.js';
import { allowedFields, GPT_ONLY_GENERATION_FIELDS } from './request-fields.js';

export interface ParsedGenerationRequest extends ParsedCommon {
  endpoint: 'generations';
  /** vivid | natural for dall-e-3, null otherwise. */
  style: Style | null;
}

export function parseGenerationRequest(body: unknown, ctx: ParseContext): ParsedGenerationRequest {
  if (!isPlainObject(body)) throw bodyNotObject(body);
  const r = jsonReader(body);

  const { requested, resolved } = resolveModelField(r, ctx, () => {
    const base = ctx.defaultModel ?? 'dall-e-2';
    // "Used" = the key is present, even with null: a client naming a GPT-only field means a GPT model.
    const usesGptOnly = GPT_ONLY_GENERATION_FIELDS.some((f) => r.has(f));
    if (!usesGptOnly) return base;
    const baseModel = ctx.resolveModel(base);
    if (baseModel?.family === 'gpt-image') return base;
    return ctx.defaultGptImageModel ?? 'gpt-image-1';
  });
  const rules = familyRules(resolved.family, requested, resolved.name);

  rejectUnknownKeys(r.keys(), allowedFields(resolved.family, 'generations'), resolved);
  const prompt = readPrompt(r, rules);
  const n = readN(r, rules);
  const size = readSize(r, rules);
  const quality = readQuality(r, rules);
  const response_format = readResponseFormat(r, rules);
  const style = readStyle(r, rules);
  const gpt = readGptOptions(r, rules);
  const user = readUser(r);
  const extensions = readExtensions(r, resolved, rules);

  return {
    endpoint: 'generations',
    model: resolved.name,
    requested_model: requested,
    family: resolved.family,
    prompt,
    n,
    size,
    quality,
    response_format,
    style,
    ...gpt,
    user,
    extensions,
    resolved: resolveOutput(rules, size, quality, gpt.background),
  };
}
