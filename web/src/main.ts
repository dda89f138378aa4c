// The playground's wiring: loads the models (asking for a key on a 401), runs generate / edit / variation requests
// (streamed where the family streams), shows partial images, errors by their control and the snippets. The controls
// are in web/index.html and form.ts, the images in gallery.ts; nothing here is framework code.
import { apiKey, call, listModels, type ModelInfo, RequestError } from './api.js';
import { base64Bytes, byId, show } from './dom.js';
import { clearFieldErrors, collect, configure, controls, modelFits, refresh, showFieldError } from './form.js';
import { fileName, Gallery } from './gallery.js';
import { addHistory, type HistoryEntry } from './history.js';
import { MaskPainter } from './mask.js';
import { curlCommand, type FilePart, type Mode, nodeSnippet, PATHS, type PlannedRequest, requestInit } from './request.js';
import { readSse } from './sse.js';

const el = {
  form: byId<HTMLFormElement>('request-form'),
  fields: byId<HTMLFieldSetElement>('request-fields'),
  auth: byId('auth'),
  authForm: byId<HTMLFormElement>('auth-form'),
  authMessage: byId('auth-message'),
  keyInput: byId<HTMLInputElement>('api-key'),
  forgetKey: byId<HTMLButtonElement>('forget-key'),
  stop: byId<HTMLButtonElement>('stop'),
  elapsed: byId('elapsed'),
  status: byId('status'),
  error: byId('error'),
  imageFile: byId<HTMLInputElement>('image-file'),
  imageName: byId('image-name'),
  dropZone: byId('drop-zone'),
  maskTools: byId('mask-tools'),
  editImage: byId<HTMLImageElement>('edit-image'),
  maskCanvas: byId<HTMLCanvasElement>('mask-canvas'),
  brushSize: byId<HTMLInputElement>('brush-size'),
  erase: byId<HTMLInputElement>('erase'),
  clearMask: byId<HTMLButtonElement>('clear-mask'),
  variationImage: byId<HTMLImageElement>('variation-image'),
  preview: byId('preview'),
  previewImage: byId<HTMLImageElement>('preview-image'),
  previewCaption: byId('preview-caption'),
  meta: byId('meta'),
  metaUsage: byId('meta-usage'),
  metaSeed: byId('meta-seed'),
  metaRequest: byId('meta-request'),
  codeTools: byId('code-tools'),
  code: byId<HTMLPreElement>('code'),
  copyCurl: byId<HTMLButtonElement>('copy-curl'),
  copyNode: byId<HTMLButtonElement>('copy-node'),
};

interface SourceImage {
  blob: Blob;
  filename: string;
  width: number;
  height: number;
}

const state = {
  models: [] as ModelInfo[],
  mode: 'generate' as Mode,
  image: null as SourceImage | null,
  controller: null as AbortController | null,
  last: null as PlannedRequest | null,
};

const painter = new MaskPainter(el.maskCanvas);
const gallery = new Gallery((e) => void sendToEdit(e));

function currentModel(): ModelInfo | undefined {
  return state.models.find((m) => m.id === controls.model.value);
}

// ---- models and auth -------------------------------------------------------------------------------------------

async function loadModels(): Promise<void> {
  try {
    state.models = await listModels();
    el.fields.disabled = false;
    show(el.auth, apiKey.get() !== null);
    showKeyEntry(false);
    el.authMessage.textContent = 'Using the API key kept in this tab (sessionStorage).';
    fillModels();
  } catch (err) {
    if (err instanceof RequestError && err.status === 401) return askForKey(err);
    showError(err);
  }
}

/** The key field while one is needed; once a key works, only the line saying so and "Forget key". */
function showKeyEntry(entry: boolean): void {
  for (const e of document.querySelectorAll<HTMLElement>('[data-key-entry]')) show(e, entry);
  show(el.forgetKey, apiKey.get() !== null);
}

function askForKey(err: RequestError): void {
  show(el.auth, true);
  showKeyEntry(true);
  el.authMessage.textContent = apiKey.get()
    ? `The server refused this key: ${err.message}`
    : 'This server needs an API key (auth is on). Enter one below; it is kept in this tab only (sessionStorage).';
  el.keyInput.focus();
}

function fillModels(): void {
  const fits = state.models.filter((m) => modelFits(m, state.mode));
  const keep = controls.model.value;
  controls.model.replaceChildren(...fits.map((m) => new Option(`${m.id} (${m.family})`, m.id)));
  const preferred = state.mode === 'variation' ? 'dall-e-2' : 'gpt-image-1';
  const ids = fits.map((m) => m.id);
  controls.model.value = ids.includes(keep) ? keep : ids.includes(preferred) ? preferred : (ids[0] ?? '');
  const model = currentModel();
  if (model) configure(model, state.mode);
  el.status.textContent = model ? '' : `No served model takes ${state.mode === 'edit' ? 'edits' : 'variations'}.`;
}

// ---- source image and mask -------------------------------------------------------------------------------------

async function useImage(blob: Blob, filename: string): Promise<void> {
  const bitmap = await createImageBitmap(blob).catch(() => null);
  if (!bitmap) {
    showFieldError('image', 'That file is not an image this browser can read.');
    return;
  }
  state.image = { blob, filename, width: bitmap.width, height: bitmap.height };
  bitmap.close();
  el.imageName.textContent = `Using ${filename}, ${state.image.width}x${state.image.height}`;
  const url = URL.createObjectURL(blob);
  el.editImage.src = url;
  el.variationImage.src = url;
  painter.reset(state.image.width, state.image.height);
  if (state.mode === 'generate') setMode('edit');
  else showImageTools();
}

function showImageTools(): void {
  show(el.maskTools, state.mode === 'edit' && state.image !== null);
  show(el.variationImage, state.mode === 'variation' && state.image !== null);
}

function firstImageFile(list: DataTransferItemList | FileList | null | undefined): File | null {
  const items: Array<File | DataTransferItem> = list ? Array.from(list as ArrayLike<File | DataTransferItem>) : [];
  for (const item of items) {
    const file = item instanceof File ? item : item.kind === 'file' ? item.getAsFile() : null;
    if (file?.type.startsWith('image/')) return file;
  }
  return null;
}

/** dall-e-2 variations take one square PNG: the picked image, centre-cropped to a square and re-encoded. */
async function squarePng(img: SourceImage): Promise<Blob> {
  const side = Math.min(img.width, img.height);
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  const bitmap = await createImageBitmap(img.blob);
  canvas.getContext('2d')!.drawImage(bitmap, (img.width - side) / 2, (img.height - side) / 2, side, side, 0, 0, side, side);
  bitmap.close();
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'));
}

async function filesFor(mode: Mode): Promise<FilePart[] | null> {
  if (mode === 'generate') return [];
  if (!state.image) {
    showFieldError('image', 'Choose, drop or paste an image first.');
    return null;
  }
  if (mode === 'variation') return [{ field: 'image', blob: await squarePng(state.image), filename: 'image.png' }];
  const files: FilePart[] = [{ field: 'image', blob: state.image.blob, filename: state.image.filename }];
  if (painter.hasPaint) files.push({ field: 'mask', blob: await painter.maskPng(), filename: 'mask.png' });
  return files;
}

// ---- running a request -----------------------------------------------------------------------------------------

interface Outcome {
  images: Array<{ b64: string; format: string; size: string }>;
  usage: { total_tokens?: number; input_tokens?: number; output_tokens?: number } | null;
}

function startClock(): () => number {
  const t0 = performance.now();
  const tick = () => {
    el.elapsed.textContent = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  };
  tick();
  const timer = setInterval(tick, 100);
  return () => {
    clearInterval(timer);
    tick();
    return (performance.now() - t0) / 1000;
  };
}

function setRunning(running: boolean): void {
  controls.run.disabled = running;
  el.stop.disabled = !running;
  el.form.setAttribute('aria-busy', String(running));
}

async function run(): Promise<void> {
  const model = currentModel();
  if (state.controller || !model) return;
  clearFieldErrors();
  show(el.error, false);
  const mode = state.mode;
  const files = await filesFor(mode);
  if (!files) return;
  const params = collect(model, mode);
  const req: PlannedRequest = { mode, path: PATHS[mode], params, files, stream: params.stream === true };
  state.last = req;
  show(el.codeTools, true);
  if (!el.code.hidden) showCode(el.code.dataset.kind === 'node' ? 'node' : 'curl');
  clearResults();
  const controller = new AbortController();
  state.controller = controller;
  setRunning(true);
  const stopClock = startClock();
  el.status.textContent = req.stream ? 'Waiting for the first image…' : 'Working…';
  try {
    const res = await call(req.path, requestInit(req, controller.signal));
    const requestId = res.headers.get('x-request-id');
    const seed = res.headers.get('x-easel-seed');
    const warning = res.headers.get('x-easel-warning');
    el.metaRequest.textContent = requestId ?? '–';
    el.metaSeed.textContent = seed ?? (params.seed === undefined ? 'not reported' : String(params.seed));
    const outcome = req.stream ? await readStream(res) : await readJson(res);
    const seconds = stopClock();
    show(el.preview, false);
    await showOutcome(outcome, { model: model.id, prompt: String(params.prompt ?? ''), mode, requestId, seed: el.metaSeed.textContent });
    el.status.textContent = `Done in ${seconds.toFixed(1)} s${warning ? `. ${readableWarning(warning)}` : ''}`;
  } catch (err) {
    const seconds = stopClock();
    if ((err as Error).name === 'AbortError') {
      // What was seen so far stays on screen, marked as stopped.
      el.status.textContent = `Stopped after ${seconds.toFixed(1)} s.`;
      if (!el.preview.hidden) el.previewCaption.textContent += ' (stopped)';
    } else {
      el.status.textContent = '';
      show(el.preview, false);
      showError(err);
    }
  } finally {
    state.controller = null;
    setRunning(false);
  }
}

/** x-easel-warning percent-encodes words outside Latin-1; a malformed one is shown as sent. */
function readableWarning(header: string): string {
  try {
    return decodeURIComponent(header);
  } catch {
    return header;
  }
}

async function readStream(res: Response): Promise<Outcome> {
  const outcome: Outcome = { images: [], usage: null };
  for await (const frame of readSse(res.body!)) {
    const data = JSON.parse(frame.data) as Record<string, unknown>;
    const type = String(data.type ?? frame.event);
    if (type === 'error') {
      const e = (data.error ?? {}) as { message?: string; param?: string; code?: string };
      throw new RequestError(e.message ?? 'The stream failed.', 500, e.param ?? null, e.code ?? null, res.headers.get('x-request-id'));
    }
    if (type.endsWith('.partial_image')) showPartial(String(data.b64_json), String(data.output_format), Number(data.partial_image_index));
    if (type.endsWith('.completed')) {
      outcome.images.push({ b64: String(data.b64_json), format: String(data.output_format), size: String(data.size) });
      outcome.usage = (data.usage as Outcome['usage']) ?? null;
      el.status.textContent = `Received image ${outcome.images.length}`;
    }
  }
  return outcome;
}

async function readJson(res: Response): Promise<Outcome> {
  const body = (await res.json()) as { data: Array<{ b64_json: string }>; output_format?: string; size?: string; usage?: Outcome['usage'] };
  const size = body.size ?? String(state.last?.params.size ?? '');
  return { images: body.data.map((d) => ({ b64: d.b64_json, format: body.output_format ?? 'png', size })), usage: body.usage ?? null };
}

function showPartial(b64: string, format: string, index: number): void {
  show(el.preview, true);
  gallery.showEmpty(false);
  el.previewImage.src = `data:image/${format};base64,${b64}`;
  const total = state.last?.params.partial_images;
  el.previewCaption.textContent = `Partial image ${index + 1}${total ? ` of ${total}` : ''}`;
  el.status.textContent = 'Streaming…';
}

function describeUsage(u: Outcome['usage']): string {
  if (!u || u.total_tokens === undefined) return 'not reported for this family';
  return `${u.total_tokens} (input ${u.input_tokens ?? 0}, output ${u.output_tokens ?? 0})`;
}

async function showOutcome(o: Outcome, info: Pick<HistoryEntry, 'model' | 'prompt' | 'mode' | 'requestId' | 'seed'>): Promise<void> {
  const now = Date.now();
  const entries: HistoryEntry[] = o.images.map((img, i) => ({
    ...info,
    id: `${now}-${i}-${Math.random().toString(36).slice(2, 8)}`,
    createdAt: now + i,
    size: img.size,
    format: img.format,
    blob: new Blob([base64Bytes(img.b64)], { type: `image/${img.format}` }),
  }));
  gallery.addResults(entries);
  el.metaUsage.textContent = describeUsage(o.usage);
  show(el.meta, true);
  await addHistory(entries).catch((err: Error) => {
    el.status.textContent = `Not kept in history: ${err.message}`;
  });
  await gallery.renderHistory();
}

function clearResults(): void {
  gallery.clearResults();
  show(el.preview, false);
  show(el.meta, false);
  el.metaUsage.textContent = '–';
}

async function sendToEdit(e: HistoryEntry): Promise<void> {
  setMode('edit');
  await useImage(e.blob, fileName(e));
  el.imageFile.focus();
}

// ---- errors ------------------------------------------------------------------------------------------------------

function showError(err: unknown): void {
  if (err instanceof RequestError) {
    if (err.status === 401) askForKey(err);
    const placed = showFieldError(err.param, err.message);
    const where = err.param ? ` (${err.param})` : '';
    el.error.textContent = placed
      ? `The request was refused${where}: see the highlighted field.${err.requestId ? ` Request id ${err.requestId}.` : ''}`
      : `${err.message}${where}${err.code ? ` [${err.code}]` : ''}${err.requestId ? ` Request id ${err.requestId}.` : ''}`;
  } else {
    el.error.textContent = `Something went wrong in the page: ${(err as Error).message ?? String(err)}`;
  }
  show(el.error, true);
}

// ---- code snippets -----------------------------------------------------------------------------------------------

function showCode(kind: 'curl' | 'node'): string {
  const req = state.last;
  if (!req) return '';
  const text = kind === 'curl' ? curlCommand(req, location.origin, apiKey.get() !== null) : nodeSnippet(req, location.origin);
  el.code.textContent = text;
  el.code.dataset.kind = kind;
  show(el.code, true);
  return text;
}

async function copy(kind: 'curl' | 'node'): Promise<void> {
  const text = showCode(kind);
  const what = kind === 'curl' ? 'curl command' : 'Node snippet';
  try {
    await navigator.clipboard.writeText(text);
    el.status.textContent = `Copied the ${what}${state.last?.files.length ? ' (save the files it names beside it)' : ''}.`;
  } catch {
    el.status.textContent = `The browser did not allow copying: the ${what} is shown below to select.`;
  }
}

// ---- events ------------------------------------------------------------------------------------------------------

function setMode(mode: Mode): void {
  state.mode = mode;
  const radio = document.querySelector<HTMLInputElement>(`input[name="mode"][value="${mode}"]`);
  if (radio) radio.checked = true;
  clearFieldErrors();
  fillModels();
  showImageTools();
}

function wire(): void {
  el.form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !gallery.viewerOpen) {
      e.preventDefault();
      void run();
    }
  });
  el.stop.addEventListener('click', () => state.controller?.abort());
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="mode"]')) {
    radio.addEventListener('change', () => setMode(radio.value as Mode));
  }
  controls.model.addEventListener('change', () => {
    const m = currentModel();
    if (m) configure(m, state.mode);
  });
  for (const c of [controls.size, controls.outputFormat]) c.addEventListener('change', () => refresh(currentModel()));
  controls.prompt.addEventListener('input', () => refresh(currentModel()));
  el.authForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = el.keyInput.value.trim();
    if (!key) return;
    apiKey.set(key);
    el.keyInput.value = '';
    void loadModels();
  });
  el.forgetKey.addEventListener('click', () => {
    apiKey.clear();
    void loadModels();
  });
  el.imageFile.addEventListener('change', () => {
    const file = firstImageFile(el.imageFile.files);
    if (file) void useImage(file, file.name);
  });
  el.dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    el.dropZone.classList.add('over');
  });
  el.dropZone.addEventListener('dragleave', () => el.dropZone.classList.remove('over'));
  el.dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    el.dropZone.classList.remove('over');
    const file = firstImageFile(e.dataTransfer?.files);
    if (file) void useImage(file, file.name);
  });
  document.addEventListener('paste', (e) => {
    const file = firstImageFile(e.clipboardData?.items);
    if (!file) return;
    e.preventDefault();
    void useImage(file, file.name || 'pasted.png');
  });
  el.brushSize.addEventListener('input', () => {
    painter.brush = Number(el.brushSize.value);
    painter.cursorEl = byId('brush-cursor');
  });
  el.erase.addEventListener('change', () => {
    painter.erase = el.erase.checked;
  });
  el.clearMask.addEventListener('click', () => painter.clear());
  el.copyCurl.addEventListener('click', () => void copy('curl'));
  el.copyNode.addEventListener('click', () => void copy('node'));
}

painter.brush = Number(el.brushSize.value);
painter.cursorEl = byId('brush-cursor');
wire();
void loadModels();
void gallery.renderHistory();
