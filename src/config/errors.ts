// ConfigError and the wording of config problems: each names where the value came from (file, environment variable
// or flag), the key path, what is allowed and what was given, so a bad config stops Easel with a message to act on.
import type { z } from 'zod';

/** Thrown by loadConfig with every problem found, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    const head = problems.length === 1 ? 'invalid config' : `invalid config (${problems.length} problems)`;
    super(`${head}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** A value as it appears in a message: JSON, cut short when long. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const NOUNS: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  record: 'an object',
};

/** z.int() is a number schema with an integer format. */
function isIntSchema(inst: unknown): boolean {
  const format = (inst as { _zod?: { def?: { format?: string } } } | undefined)?._zod?.def?.format;
  return format === 'safeint' || format === 'int32' || format === 'uint32';
}

/** zod error map: messages that say what is allowed and what was given. */
export const describeIssue: z.core.$ZodErrorMap = (iss) => {
  const got = `got ${show(iss.input)}`;
  switch (iss.code) {
    case 'invalid_type': {
      const expected = iss.expected === 'number' && isIntSchema(iss.inst) ? 'int' : iss.expected;
      return `expected ${NOUNS[expected] ?? expected}, ${got}`;
    }
    case 'invalid_value':
      return `expected one of ${iss.values.map((v) => JSON.stringify(v)).join(' | ')}, ${got}`;
    case 'too_small': {
      if (iss.origin === 'array') return `expected at least ${iss.minimum} item(s), got ${(iss.input as unknown[]).length}`;
      if (iss.origin === 'string') return `expected at least ${iss.minimum} character(s), ${got}`;
      return `expected a value ${iss.inclusive === false ? '>' : '>='} ${iss.minimum}, ${got}`;
    }
    case 'too_big':
      return `expected a value ${iss.inclusive === false ? '<' : '<='} ${iss.maximum}, ${got}`;
    case 'invalid_format':
      return iss.format === 'url' ? `expected an http(s) URL, ${got}` : `expected a ${iss.format}, ${got}`;
    case 'unrecognized_keys': {
      const shape = (iss.inst as z.core.$ZodObject | undefined)?._zod.def.shape;
      return shape ? `allowed keys are ${Object.keys(shape).join(', ')}` : 'not allowed here';
    }
    default:
      return undefined;
  }
};

/** `limits.bodyBytes`, `models[0].name`, `aliases["gpt-image-1"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(String(key))) out += out ? `.${String(key)}` : String(key);
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** One line per problem, each prefixed by `source: ` (a file name, an environment variable or a flag). */
export function problemsOf(source: string, error: z.ZodError, basePath: readonly PropertyKey[] = []): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const path = [...basePath, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${source}: ${formatPath([...path, key])}: unknown key (${issue.message})`);
      continue;
    }
    const where = formatPath(path);
    lines.push(where ? `${source}: ${where}: ${issue.message}` : `${source}: ${issue.message}`);
  }
  return lines;
}
