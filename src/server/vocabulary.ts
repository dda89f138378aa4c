// Which words of a prompt a model cannot understand, for models that declare their vocabulary (easel.json
// prompt_vocabulary): the default model draws coloured shapes only, and silently ignoring "a dog" helps no one.
// The words go back in an `x-easel-warning` header and the log; the request is still served.

const MAX_LISTED = 20;

/** Distinct words of `prompt` (letters and digits, lower-cased, in order) that are not in `vocabulary`. */
export function ignoredWords(prompt: string, vocabulary: readonly string[]): string[] {
  const known = new Set(vocabulary);
  const out = new Set<string>();
  for (const m of prompt.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) if (!known.has(m[0])) out.add(m[0]);
  return [...out];
}

/**
 * The header value: a sentence naming up to MAX_LISTED words. Header values must be Latin-1, so words with other
 * characters are percent-encoded (as encodeURIComponent writes them).
 */
export function ignoredWordsWarning(words: readonly string[]): string {
  const shown = words.slice(0, MAX_LISTED).map((w) => (/^[\x20-\x7e]*$/.test(w) ? w : encodeURIComponent(w)));
  const more = words.length > MAX_LISTED ? ` and ${words.length - MAX_LISTED} more` : '';
  return `the model does not know these words and ignored them: ${shown.join(', ')}${more}`;
}
