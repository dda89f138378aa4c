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

export function createWordFilter(categories: Record<string, string[]>, lowCategories: readonly string[]): ModerationHook {
  const compiled = Object.entries(categories).map(([category, terms]) => ({
    category,
    // Whole words/phrases, case-insensitive, any run of whitespace between the words of a phrase.
    pattern: terms.length
      ? new RegExp(
          `(?<![\\p{L}\\p{N}])(?:${terms.map((t) => escapeRegex(t.trim()).replace(/\s+/g, '\\s+')).join('|')})(?![\\p{L}\\p{N}])`,
          'iu',
        )
      : undefined,
  }));
  const low = new Set(lowCategories);
  return (prompt, level) => {
    const hits = compiled.filter((c) => (level === 'auto' || low.has(c.category)) && c.pattern?.test(prompt)).map((c) => c.category);
    return { flagged: hits.length > 0, categories: hits };
  };
}

/** Runs the hook on a prompt and refuses the request with OpenAI's moderation_blocked when it is flagged. */
export async function checkModeration(hook: ModerationHook, prompt: string, level: ModerationLevel, requestId: string): Promise<void> {
  const verdict = await hook(prompt, level);
  if (verdict.flagged) throw moderationBlocked({ requestId, categories: verdict.categories });
}
