// Validates Usage API pages (GET /v1/organization/usage/images) against the vendored OpenAI spec subset in
// test/fixtures/openai/, the way test/e2e/usage-api.test.ts does, for other e2e tests that read the Usage API.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';

const USAGE_SPEC = join(import.meta.dirname, '..', 'fixtures', 'openai', 'openai-openapi-usage-images.yaml');

let validate: ValidateFunction | undefined;

/**
 * UsageResponse from the vendored subset. Upstream's UsageTimeBucket.results is a oneOf over every usage result type,
 * of which the subset keeps only UsageImagesResult (fixtures README): the items are checked against it directly.
 */
function compile(): ValidateFunction {
  type Bucket = { properties: { results: { items: unknown } } };
  const spec = parseYaml(readFileSync(USAGE_SPEC, 'utf8')) as { components: { schemas: Record<string, unknown> } };
  const schemas = structuredClone(spec.components.schemas);
  (schemas.UsageTimeBucket as Bucket).properties.results.items = { $ref: '#/components/schemas/UsageImagesResult' };
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
  ajv.addSchema({ $id: 'https://easel.invalid/usage.json', components: { schemas } });
  return ajv.getSchema('https://easel.invalid/usage.json#/components/schemas/UsageResponse')!;
}

/** Errors (empty when valid) of `value` against the spec's UsageResponse. */
export function validateUsage(value: unknown): string[] {
  validate ??= compile();
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}
