// The local prompt filter behind `moderation`: a simple, documented word/phrase list per category.
// 'auto' checks every configured category, 'low' only the smallest set. A classifier can replace it through the hook.

import { moderationBlocked } from '../contract/errors.js';

export type ModerationLevel = 'auto' | 'low';

export interface ModerationResult {
  flagged: boolean;
  categories: string[];
}

/** A pluggable check, e.g. a classifier model; the default is the word filter below. */
export type ModerationHook = (prompt: string, level: ModerationLevel) => Promise<ModerationResult> | ModerationResult;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The text the word list is matched against: NFKC (full-width and compatibility letters become plain ones), format
 * characters dropped (zero-width, soft hyphen, bidi controls), lower case, and runs of single letters split by `-`,
 * `.`, `_` or spaces joined ("n-u-d-e", "n u d e" → "nude"); a leading "a" or "i" (English's one-letter words)
 * stays a word of its own. Only matching sees this text; the prompt itself is unchanged.
 */
export function normalizeForModeration(prompt: string): string {
  const text = prompt
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .toLowerCase();
  return text.replace(/(?<![\p{L}\p{N}])\p{L}(?:[-._\s]+\p{L}(?![\p{L}\p{N}])){2,}/gu, (run) => {
    const article = /^([ai])\s+(?=\p{L}(?:[-._\s]+\p{L}){2,}$)/u.exec(run);
    const rest = article ? run.slice(article[0].length) : run;
    return `${article ? `${article[1]} ` : ''}${rest.replace(/[-._\s]+/g, '')}`;
  });
}

/** A term's pattern: its words separated by any whitespace, the last word also in its plural (-s, -es). */
function termPattern(term: string): string {
  const words = term.trim().toLowerCase().split(/\s+/).map(escapeRegex);
  return `${words.join('\\s+')}(?:e?s)?`;
}

export function createWordFilter(categories: Record<string, string[]>, lowCategories: readonly string[]): ModerationHook {
  const compiled = Object.entries(categories).map(([category, terms]) => ({
    category,
    // Whole words/phrases only, so "nudibranch", "Goretex" and "gorgeous" stay allowed.
    pattern: terms.length ? new RegExp(`(?<![\\p{L}\\p{N}])(?:${terms.map(termPattern).join('|')})(?![\\p{L}\\p{N}])`, 'u') : undefined,
  }));
  const low = new Set(lowCategories);
  return (prompt, level) => {
    const text = normalizeForModeration(prompt);
    const hits = compiled.filter((c) => (level === 'auto' || low.has(c.category)) && c.pattern?.test(text)).map((c) => c.category);
    return { flagged: hits.length > 0, categories: hits };
  };
}

/** Runs the hook on a prompt and refuses the request with OpenAI's moderation_blocked when it is flagged. */
export async function checkModeration(hook: ModerationHook, prompt: string, level: ModerationLevel, requestId: string): Promise<void> {
  const verdict = await hook(prompt, level);
  if (verdict.flagged) throw moderationBlocked({ requestId, categories: verdict.categories });
}
