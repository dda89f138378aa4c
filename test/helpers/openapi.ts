// Validates values against a named component schema of OpenAI's published Images spec
// (the vendored copy in test/fixtures/openai/), so unit and e2e tests check Easel's wire shapes.
//
// The components are registered with Ajv (JSON Schema 2020-12, which OpenAPI 3.1 uses) under an $id so
// `#/components/schemas/...` refs resolve; OpenAPI-only keywords (x-oaiMeta, discriminator, example,
// nullable) are ignored in non-strict mode, and the spec's custom formats (binary, unixtime) are declared.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OPENAPI_SPEC_PATH = path.resolve(repoRoot, 'test/fixtures/openai/openai-openapi-images.yaml');
const SPEC_ID = 'https://easel.invalid/openai-openapi-images.json';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM interop.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

let ajv: Ajv2020 | undefined;
let schemaNames: Set<string> | undefined;
const compiled = new Map<string, ValidateFunction>();

function load(): { ajv: Ajv2020; names: Set<string> } {
  if (!ajv || !schemaNames) {
    const spec = parseYaml(readFileSync(OPENAPI_SPEC_PATH, 'utf8')) as { components?: { schemas?: Record<string, unknown> } };
    const schemas = spec.components?.schemas;
    if (!schemas) throw new Error(`no components.schemas in ${OPENAPI_SPEC_PATH}`);
    ajv = new Ajv2020({ strict: false, allErrors: true, logger: false, validateFormats: true });
    addFormats(ajv);
    ajv.addFormat('binary', true);
    ajv.addFormat('unixtime', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= 0 });
    ajv.addSchema({ $id: SPEC_ID, components: { schemas } });
    schemaNames = new Set(Object.keys(schemas));
  }
  return { ajv, names: schemaNames };
}

/** Names of the component schemas in the spec. */
export function schemaNamesInSpec(): string[] {
  return [...load().names];
}

/** Errors (empty when valid) of `value` against `#/components/schemas/<schemaName>`. */
export function validateSchema(schemaName: string, value: unknown): string[] {
  const { ajv: a, names } = load();
  if (!names.has(schemaName)) throw new Error(`unknown schema '${schemaName}' in ${OPENAPI_SPEC_PATH}`);
  let validate = compiled.get(schemaName);
  if (!validate) {
    validate = a.getSchema(`${SPEC_ID}#/components/schemas/${schemaName}`);
    if (!validate) throw new Error(`could not compile schema '${schemaName}'`);
    compiled.set(schemaName, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`,
  );
}
