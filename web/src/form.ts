// The request controls: which ones a model's family and mode accept (sizes, custom sizes, quality, n, style,
// GPT-only fields, the extensions /v1/models lists), and reading them into body fields. The rules come from
// src/contract/families.ts, the same tables the server validates with.
import { BACKGROUNDS, type FamilyRules, familyRules, OUTPUT_FORMATS } from '../../src/contract/families.js';
import { SCHEDULER_NAMES } from '../../src/engine/schedulers/names.js';
import type { ModelInfo } from './api.js';
import { byId, show } from './dom.js';
import type { Mode } from './request.js';

const CUSTOM = 'custom';

export const controls = {
  model: byId<HTMLSelectElement>('model'),
  modelNote: byId('model-note'),
  prompt: byId<HTMLTextAreaElement>('prompt'),
  promptCount: byId('prompt-count'),
  size: byId<HTMLSelectElement>('size'),
  customSize: byId('custom-size'),
  width: byId<HTMLInputElement>('width'),
  height: byId<HTMLInputElement>('height'),
  quality: byId<HTMLSelectElement>('quality'),
  n: byId<HTMLInputElement>('n'),
  style: byId<HTMLSelectElement>('style'),
  background: byId<HTMLSelectElement>('background'),
  outputFormat: byId<HTMLSelectElement>('output-format'),
  compression: byId<HTMLInputElement>('output-compression'),
  compressionField: byId('compression-field'),
  partialImages: byId<HTMLSelectElement>('partial-images'),
  seed: byId<HTMLInputElement>('seed'),
  steps: byId<HTMLInputElement>('steps'),
  guidance: byId<HTMLInputElement>('guidance'),
  negativePrompt: byId<HTMLTextAreaElement>('negative-prompt'),
  scheduler: byId<HTMLSelectElement>('scheduler'),
  advanced: byId<HTMLDetailsElement>('advanced'),
  run: byId<HTMLButtonElement>('run'),
};

export function rulesOf(model: ModelInfo): FamilyRules {
  return familyRules(model.family, model.id, model.served_by);
}

/** Which models a mode can use: edits need a family with edits, variations dall-e-2. */
export function modelFits(model: ModelInfo, mode: Mode): boolean {
  const rules = rulesOf(model);
  return mode === 'generate' || (mode === 'edit' ? rules.supportsEdits : rules.supportsVariations);
}

/** Replaces a select's options, keeping the current choice when it is still offered. */
function fill(select: HTMLSelectElement, values: readonly string[], fallback: string, label = (v: string) => v): void {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(label(v), v)));
  select.value = values.includes(keep) ? keep : values.includes(fallback) ? fallback : (values[0] ?? '');
}

function showWhen(name: string, visible: boolean): void {
  for (const el of document.querySelectorAll<HTMLElement>(`[data-when="${name}"]`)) show(el, visible);
}

/** Shows the controls the model accepts in this mode, with its values. */
export function configure(model: ModelInfo, mode: Mode): void {
  const rules = rulesOf(model);
  const gpt = rules.gptFeatures && mode !== 'variation';
  const sizes = [...rules.sizes, ...(rules.flexibleSize && mode === 'generate' ? [CUSTOM] : [])];
  fill(controls.size, sizes, rules.defaultSize, (v) => (v === CUSTOM ? 'Custom…' : v));
  const qualities = mode === 'edit' ? rules.editQualities : rules.qualities;
  fill(controls.quality, qualities, rules.defaultQuality);
  fill(controls.style, rules.styles ?? [], rules.defaultStyle ?? '');
  fill(controls.background, BACKGROUNDS, 'auto');
  for (const o of controls.background.options) o.disabled = o.value === 'transparent' && !model.capabilities.transparent_background;
  fill(controls.outputFormat, OUTPUT_FORMATS, 'png');
  fill(controls.scheduler, ['', ...SCHEDULER_NAMES], '', (v) => v || 'model default');
  controls.n.max = String(rules.nMax);
  showWhen('prompt', mode !== 'variation');
  showWhen('image', mode !== 'generate');
  showWhen('quality', mode !== 'variation');
  showWhen('style', mode === 'generate' && rules.styles !== null);
  showWhen('gpt', gpt);
  for (const el of document.querySelectorAll<HTMLElement>('[data-extension]')) show(el, model.extensions.includes(el.dataset.extension!));
  show(controls.advanced, model.extensions.length > 0);
  controls.modelNote.textContent = `${model.family} rules${model.served_by !== model.id ? `, served by ${model.served_by}` : ''}`;
  controls.run.textContent = mode === 'generate' ? 'Generate' : mode === 'edit' ? 'Edit' : 'Create variations';
  refresh(model);
}

/** What depends on other controls' values: the custom size inputs, compression, the prompt's length. */
export function refresh(model: ModelInfo | undefined): void {
  const rules = model ? rulesOf(model) : undefined;
  show(controls.customSize, controls.size.value === CUSTOM);
  if (rules?.flexibleSize) {
    for (const input of [controls.width, controls.height]) {
      input.step = String(rules.flexibleSize.multipleOf);
      input.max = String(rules.flexibleSize.maxEdge);
    }
  }
  show(controls.compressionField, controls.outputFormat.value !== 'png');
  const max = rules?.promptMaxLength;
  controls.promptCount.textContent = max ? `${controls.prompt.value.length} / ${max} characters` : '';
  controls.promptCount.classList.toggle('over', max !== undefined && controls.prompt.value.length > max);
}

function numberOf(input: HTMLInputElement): number | undefined {
  return input.value.trim() === '' ? undefined : Number(input.value);
}

/** The body fields the controls say, in a readable order; fields left empty are not sent (the server's defaults apply). */
export function collect(model: ModelInfo, mode: Mode): Record<string, string | number | boolean> {
  const rules = rulesOf(model);
  const p: Record<string, string | number | boolean> = { model: model.id };
  if (mode !== 'variation') p.prompt = controls.prompt.value;
  p.size = controls.size.value === CUSTOM ? `${controls.width.value}x${controls.height.value}` : controls.size.value;
  const n = numberOf(controls.n);
  if (n !== undefined && n !== 1) p.n = n;
  if (mode !== 'variation') p.quality = controls.quality.value;
  if (mode === 'generate' && rules.styles) p.style = controls.style.value;
  if (rules.gptFeatures && mode !== 'variation') {
    p.background = controls.background.value;
    p.output_format = controls.outputFormat.value;
    const compression = numberOf(controls.compression);
    if (controls.outputFormat.value !== 'png' && compression !== undefined) p.output_compression = compression;
    p.stream = true;
    p.partial_images = Number(controls.partialImages.value);
  } else {
    p.response_format = 'b64_json';
  }
  const ext = new Set(model.extensions);
  // An empty seed is chosen here, so the result can be remade and the snippets reproduce it exactly.
  if (ext.has('seed')) p.seed = numberOf(controls.seed) ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const steps = numberOf(controls.steps);
  if (ext.has('num_inference_steps') && steps !== undefined) p.num_inference_steps = steps;
  const guidance = numberOf(controls.guidance);
  if (ext.has('guidance_scale') && guidance !== undefined) p.guidance_scale = guidance;
  if (ext.has('negative_prompt') && controls.negativePrompt.value.trim()) p.negative_prompt = controls.negativePrompt.value;
  if (ext.has('scheduler') && controls.scheduler.value) p.scheduler = controls.scheduler.value;
  return p;
}

/** Shows an API error by the control its `param` names (image[2] → image, images[0].image_url → image); false when none does. */
export function showFieldError(param: string | null, message: string): boolean {
  if (!param) return false;
  const root = param.replace(/[[.].*$/, '').replace(/^images$/, 'image');
  const slot = document.querySelector<HTMLElement>(`[data-error-for="${root}"]`);
  const control = document.querySelector<HTMLElement>(`[data-param="${root}"]`);
  if (!slot || slot.parentElement?.closest('[hidden]')) return false;
  slot.textContent = message;
  slot.id ||= `error-${root}`;
  slot.hidden = false;
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.setAttribute('aria-describedby', slot.id);
    if (control.closest('details')) controls.advanced.open = true;
    control.focus();
  }
  return true;
}

export function clearFieldErrors(): void {
  for (const slot of document.querySelectorAll<HTMLElement>('[data-error-for]')) slot.hidden = true;
  for (const c of document.querySelectorAll<HTMLElement>('[aria-invalid]')) {
    c.removeAttribute('aria-invalid');
    c.removeAttribute('aria-describedby');
  }
}
