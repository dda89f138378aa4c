// The playground page in a real browser: Debian's chromium driven by playwright-core against a real `easel serve`
// on the tiny fixture. Each state is saved as a screenshot under test-results/playground/ for a person to look at.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { openSqliteDb } from '../../src/db/index.js';
import { type ServedCli, serveCli } from '../helpers/serve.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHOTS = join(ROOT, 'test-results', 'playground');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** expect.poll with room for a generation on a busy 2-core machine (its default gives up after 1 s). */
const until = <T>(probe: () => Promise<T>) => expect.poll(probe, { timeout: 30_000, interval: 100 });

/** `p`, or a failure saying `why()` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why())), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first result's bytes, through its Download link (which names the file for its format). */
async function downloaded(page: Page): Promise<Buffer> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).first().click()]);
  expect(download.suggestedFilename()).toMatch(/^easel-.+\.png$/);
  return readFileSync((await download.path())!);
}

/** An empty folder where `openai` resolves from the repository's node_modules (test-results/ is git-ignored). */
function snippetDir(): string {
  const dir = join(ROOT, 'test-results', 'playground-snippet');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The image of the first completed event in an SSE body (what the copied curl prints). */
function completedImage(sse: string): Buffer {
  const m = /^data: (.*"type":"image_(?:generation|edit)\.completed".*)$/m.exec(sse);
  expect(m, sse.slice(0, 500)).not.toBeNull();
  return Buffer.from((JSON.parse(m![1]) as { b64_json: string }).b64_json, 'base64');
}

/** Runs a copied Node snippet in `dir`; it writes image-0.<format>. */
function runNode(dir: string, snippet: string): Buffer {
  writeFileSync(join(dir, 'snippet.mjs'), snippet);
  execFileSync(process.execPath, ['snippet.mjs'], { cwd: dir, stdio: 'pipe' });
  return readFileSync(join(dir, 'image-0.png'));
}

const pageErrors: string[] = [];

/** Script errors, console errors (a CSP violation is one) and failed responses, but the 400 the tests ask for. */
function watchForErrors(page: Page): void {
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('status of 400')) pageErrors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !(r.status() === 400 && r.url().endsWith('/v1/images/generations')))
      pageErrors.push(`${r.status()} ${r.url()}`);
  });
}

let browser: Browser;
const dirs: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'easel-playground-'));
  dirs.push(dir);
  return dir;
}

async function queueOf(server: ServedCli): Promise<{ waiting: number; running: number }> {
  const body = (await (await fetch(`${server.url}/readyz`)).json()) as { queue: { waiting: number; running: number } };
  return body.queue;
}

/** Jobs the server has ended as cancelled (easel_job_duration_seconds' count for outcome="cancelled", all models). */
async function cancelledJobs(server: ServedCli): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const counts = text.split('\n').filter((l) => l.startsWith('easel_job_duration_seconds_count{') && l.includes('outcome="cancelled"'));
  return counts.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

/** Records, in order, every src the preview image takes and the moment the first final result appears. */
async function recordFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const log: string[] = [];
    (window as unknown as { frames_: string[] }).frames_ = log;
    const preview = document.getElementById('preview-image')!;
    new MutationObserver(() => log.push(`partial:${preview.getAttribute('src')}`)).observe(preview, {
      attributes: true,
      attributeFilter: ['src'],
    });
    new MutationObserver(() => {
      if (document.querySelector('#results img')) log.push('final');
    }).observe(document.getElementById('results')!, { childList: true });
  });
}

async function pngSize(page: Page, selector: string): Promise<[number, number]> {
  return page.locator(selector).evaluate(async (img: HTMLImageElement) => {
    await img.decode();
    return [img.naturalWidth, img.naturalHeight] as [number, number];
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  // The test checks the page as the source says now, so it bundles it first (what `npm run build` does too).
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { stdio: 'pipe' });
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('playground without auth', () => {
  let server: ServedCli;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    server = await serveCli(tempDir(), {});
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    watchForErrors(page);
    await keepMultipartBodies(page);
    await page.goto(server.url);
    await page.locator('#model option').nth(1).waitFor({ state: 'attached' });
  });

  afterAll(async () => {
    await context?.close();
    await server?.kill();
  });

  beforeEach(({ task }) => {
    onTestFailed(() => shot(page, `failed-${task.name.slice(0, 40).replace(/\W+/g, '-')}`));
  });

  it('is served at / from the built bundle, with nothing from another origin', async () => {
    const res = await fetch(`${server.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/(?:src|href)=["'](?:https?:)?\/\//);
    expect((await fetch(`${server.url}/playground/app.js`)).status).toBe(200);
  });

  it("offers each family's own options, and the extensions the model lists under Advanced", async () => {
    const sizes = () => page.locator('#size option').evaluateAll((os: HTMLOptionElement[]) => os.map((o) => o.value));
    const model = page.getByLabel('Model', { exact: true });
    await model.selectOption('dall-e-3');
    expect(await sizes()).toEqual(['1024x1024', '1792x1024', '1024x1792']);
    expect(await page.getByLabel('Style', { exact: true }).isVisible()).toBe(true);
    expect(await page.getByLabel('Background', { exact: true }).isVisible()).toBe(false);
    expect(await page.getByLabel('Images (n)', { exact: true }).getAttribute('max')).toBe('1');
    await model.selectOption('gpt-image-1');
    expect(await sizes()).toEqual(['1024x1024', '1536x1024', '1024x1536', 'auto']);
    expect(await page.getByLabel('Style', { exact: true }).isVisible()).toBe(false);
    expect(await page.getByLabel('Partial images', { exact: true }).isVisible()).toBe(true);
    await model.selectOption('gpt-image-2');
    expect(await sizes()).toContain('custom');
    await page.getByText('Advanced').click();
    for (const name of ['Seed', 'Steps', 'Guidance', 'Scheduler', 'Negative prompt']) {
      expect(await page.getByLabel(name, { exact: true }).isVisible()).toBe(true);
    }
    await shot(page, '00-options');
    await page.getByText('Advanced').click();
  });

  it('streams at least two distinct partial images before the final one, at the chosen custom size', async () => {
    await page.getByLabel('Model', { exact: true }).selectOption('gpt-image-2');
    await page.getByLabel('Prompt', { exact: true }).fill('a red circle and a blue square');
    await page.getByLabel('Size', { exact: true }).selectOption('custom');
    await page.getByLabel('Width', { exact: true }).fill('1280');
    await page.getByLabel('Height', { exact: true }).fill('720');
    await page.getByLabel('Partial images', { exact: true }).selectOption('3');
    await page.getByText('Advanced').click();
    await page.getByLabel('Seed', { exact: true }).fill('7');
    await page.getByLabel('Steps', { exact: true }).fill('30');
    await recordFrames(page);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.locator('#results img').first().waitFor();
    await until(() => page.locator('#status').textContent()).toMatch(/Done in/);

    const log = await page.evaluate(() => (window as unknown as { frames_: string[] }).frames_);
    const beforeFinal = log.slice(0, log.indexOf('final')).filter((e) => e.startsWith('partial:data:'));
    expect(log).toContain('final');
    expect(new Set(beforeFinal).size).toBeGreaterThanOrEqual(2);
    expect(await pngSize(page, '#results img')).toEqual([1280, 720]);
    expect(await page.locator('#meta-usage').textContent()).toMatch(/^\d+ \(input \d+, output \d+\)$/);
    expect(await page.locator('#meta-seed').textContent()).toBe('7');
    expect(await page.locator('#meta-request').textContent()).toMatch(/^req_/);
    await shot(page, '01-streamed-result');
  });

  it('copies the exact request as curl and as Node, and both snippets run and remake the image', async () => {
    // The Download button hands over the image's own bytes, named for its format.
    const made = await downloaded(page);
    expect((await sharp(made).metadata()).width).toBe(1280);
    await page.getByRole('button', { name: 'Copy as curl' }).click();
    const curl = (await page.locator('#code').textContent())!;
    expect(curl).toContain(`${server.url}/v1/images/generations`);
    expect(curl).toContain('"size":"1280x720"');
    expect(curl).toContain('"seed":7');
    expect(completedImage(execFileSync('sh', ['-c', curl], { encoding: 'utf8', maxBuffer: 64 << 20 })).equals(made)).toBe(true);

    await page.getByRole('button', { name: 'Copy as Node (openai SDK)' }).click();
    const node = (await page.locator('#code').textContent())!;
    expect(node).toContain('client.images.generate(');
    expect(runNode(snippetDir(), node).equals(made)).toBe(true);
    await shot(page, '02-code');
  });

  it('Stop cancels a running generation and leaves the queue empty', async () => {
    await page.getByLabel('Model', { exact: true }).selectOption('gpt-image-1');
    await page.getByLabel('Size', { exact: true }).selectOption('1536x1024');
    await page.getByLabel('Images (n)', { exact: true }).fill('10');
    await page.getByLabel('Steps', { exact: true }).fill('100');
    const logsFrom = server.logs.length;
    try {
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.locator('#preview').waitFor({ state: 'visible' });
      // The first partial image comes at a quarter of the steps: most of the job (the rest and encoding ten images) is
      // left. Stop at once; the 499 below proves the client left before its answer was complete.
      await page.getByRole('button', { name: 'Stop' }).click();
      await until(() => page.locator('#status').textContent()).toMatch(/Stopped after/);
      expect(await page.locator('#preview-caption').textContent()).toMatch(/^Partial image \d of 3 \(stopped\)$/);
      await shot(page, '03-stopped-with-partial');
      expect(await page.locator('#results img').count()).toBe(0);
      // The server saw the client leave (nginx's 499) and its engine has nothing left to do.
      await within(
        server.waitForLog((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 499, logsFrom),
        20_000,
        () =>
          `no 499 in the server log; it logged:\n${server.logs
            .slice(logsFrom)
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
      );
      await until(() => queueOf(server)).toEqual({ waiting: 0, running: 0 });
      // ...because the job was cancelled, not because it ran out: the server counts it as a cancelled job.
      expect(await cancelledJobs(server)).toBeGreaterThanOrEqual(1);
    } finally {
      // The next tests start from one image at the preset's steps, whatever happened here.
      await page.getByLabel('Images (n)', { exact: true }).fill('1');
      await page.getByLabel('Steps', { exact: true }).fill('');
    }
  });

  it('edits with a painted mask: painted pixels are alpha 0 in the mask sent, and the result appears', async () => {
    const source = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 40, g: 120, b: 200 } } })
      .png()
      .toBuffer();
    await page.getByLabel('Edit', { exact: true }).check();
    await page.getByLabel('Image', { exact: true }).setInputFiles({ name: 'blue.png', mimeType: 'image/png', buffer: source });
    const canvas = page.getByLabel('Mask: paint the areas to repaint', { exact: true });
    await canvas.waitFor({ state: 'visible' });
    expect(await page.locator('#image-name').textContent()).toBe('Using blue.png, 256x256');
    const box = (await canvas.boundingBox())!;
    // A stroke across the middle of the image, at the default brush size.
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5, { steps: 8 });
    await page.mouse.up();
    await page.getByLabel('Prompt', { exact: true }).fill('a yellow circle');
    await page.getByLabel('Size', { exact: true }).selectOption('1024x1024');

    const sent = page.waitForRequest((r) => r.url().endsWith('/v1/images/edits'));
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    expect((await sent).headers()['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    const form = await lastMultipart(page);
    const mask = form.get('mask')!;
    expect(mask.type).toBe('image/png');
    const { data, info } = await sharp(Buffer.from(mask.value, 'base64')).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);
    const alphaAt = (x: number, y: number) => data[(y * info.width + x) * 4 + 3];
    expect(alphaAt(128, 128)).toBe(0);
    expect(alphaAt(100, 128)).toBe(0);
    expect(alphaAt(5, 5)).toBe(255);
    expect(alphaAt(128, 250)).toBe(255);
    expect(form.get('stream')?.value).toBe('true');
    expect(form.get('prompt')?.value).toBe('a yellow circle');

    await page.locator('#results img').first().waitFor();
    expect(await pngSize(page, '#results img')).toEqual([1024, 1024]);
    await shot(page, '05-edit-with-mask');

    // The snippets of a multipart request name the files to save beside them; with those, both remake the edit.
    const made = await downloaded(page);
    const dir = snippetDir();
    writeFileSync(join(dir, 'blue.png'), source);
    writeFileSync(join(dir, 'mask.png'), Buffer.from(mask.value, 'base64'));
    await page.getByRole('button', { name: 'Copy as curl' }).click();
    const curl = (await page.locator('#code').textContent())!;
    expect(curl).toContain('-F image=@blue.png');
    expect(completedImage(execFileSync('sh', ['-c', curl], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 })).equals(made)).toBe(true);
    await page.getByRole('button', { name: 'Copy as Node (openai SDK)' }).click();
    expect(runNode(dir, (await page.locator('#code').textContent())!).equals(made)).toBe(true);
  });

  it('shows a too-long dall-e-2 prompt error beside the prompt box', async () => {
    await page.getByLabel('Generate', { exact: true }).check();
    await page.getByLabel('Model', { exact: true }).selectOption('dall-e-2');
    await page.getByLabel('Prompt', { exact: true }).fill('a red circle '.repeat(100));
    await page.getByRole('button', { name: 'Generate' }).click();
    const slot = page.locator('[data-error-for="prompt"]');
    await slot.waitFor({ state: 'visible' });
    expect(await slot.textContent()).toMatch(/Invalid 'prompt': string too long\. Expected a string with maximum length 1000/);
    expect(await page.getByLabel('Prompt', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await shot(page, '06-prompt-too-long');
  });

  it('makes dall-e-2 variations of the picked image, sent as a square PNG without a prompt', async () => {
    await page.getByLabel('Variations', { exact: true }).check();
    expect(await page.getByLabel('Model', { exact: true }).inputValue()).toBe('dall-e-2');
    await until(() => page.getByLabel('Prompt', { exact: true }).isVisible()).toBe(false);
    await page.getByLabel('Size', { exact: true }).selectOption('256x256');
    await page.getByLabel('Images (n)', { exact: true }).fill('2');
    await page.getByRole('button', { name: 'Create variations' }).click();
    await until(() => page.locator('#results img').count()).toBe(2);
    expect(await pngSize(page, '#results img >> nth=1')).toEqual([256, 256]);
    await shot(page, '07-variations');
    const form = await lastMultipart(page);
    expect(form.has('prompt')).toBe(false);
    expect(form.get('image')?.type).toBe('image/png');
    const sentImage = await sharp(Buffer.from(form.get('image')!.value, 'base64')).metadata();
    expect([sentImage.format, sentImage.width, sentImage.height]).toEqual(['png', 256, 256]);
    expect(form.get('response_format')?.value).toBe('b64_json');
    await shot(page, '07-variations');
    await page.getByLabel('Images (n)', { exact: true }).fill('1');
  });

  it('keeps the history across a reload, and clears it', async () => {
    const before = await page.locator('#history li').count();
    expect(before).toBeGreaterThanOrEqual(4); // the streamed result, the edit, two variations
    await page.reload();
    await until(() => page.locator('#history li').count()).toBe(before);
    await shot(page, '08-history-after-reload');
    await page.locator('#history button').first().click();
    await page.locator('#viewer').waitFor({ state: 'visible' });
    expect(await page.locator('#viewer-download').getAttribute('download')).toMatch(/\.png$/);
    await shot(page, '09-viewer');
    // Send to Edit: the image becomes the edit's source, and its mask can be painted by keyboard too.
    await page.getByRole('button', { name: 'Send to Edit' }).click();
    expect(await page.getByLabel('Edit', { exact: true }).isChecked()).toBe(true);
    const canvas = page.getByLabel('Mask: paint the areas to repaint');
    await canvas.waitFor({ state: 'visible' });
    await canvas.focus();
    await page.keyboard.press('Shift+ArrowLeft');
    await page.keyboard.press('Space');
    const painted = await canvas.evaluate((c: HTMLCanvasElement) => {
      const ctx = c.getContext('2d')!;
      const alpha = (fx: number, fy: number) => ctx.getImageData(Math.round(c.width * fx), Math.round(c.height * fy), 1, 1).data[3];
      return { width: c.width, atCursor: alpha(0.4, 0.5), elsewhere: alpha(0.9, 0.9) };
    });
    expect(painted.atCursor).toBeGreaterThan(0);
    expect(painted.elsewhere).toBe(0);
    await shot(page, '10-sent-to-edit-keyboard-mask');
    await page.getByRole('button', { name: 'Clear history' }).click();
    await until(() => page.locator('#history li').count()).toBe(0);
    await page.reload();
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    expect(await page.locator('#history li').count()).toBe(0);
  });

  it('takes the image to edit from a paste and from a drop', async () => {
    await page.getByLabel('Generate', { exact: true }).check();
    const sizeAfter = async (send: (png: number[]) => Promise<void>, side: number) => {
      const png = await sharp({ create: { width: side, height: side / 2, channels: 4, background: '#3a6' } })
        .png()
        .toBuffer();
      await send(Array.from(png));
      await until(() => page.locator('#mask-canvas').evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`)).toBe(
        `${side}x${side / 2}`,
      );
    };
    await sizeAfter(
      (png) =>
        page.evaluate((bytes) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
          document.getElementById('prompt')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
        }, png),
      320,
    );
    // A paste in Generate mode switches to Edit.
    expect(await page.getByLabel('Edit', { exact: true }).isChecked()).toBe(true);
    await sizeAfter(
      (png) =>
        page.evaluate((bytes) => {
          const data = new DataTransfer();
          data.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
          document
            .getElementById('drop-zone')!
            .dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
        }, png),
      192,
    );
  });

  it('works by keyboard alone at a phone width: Ctrl+Enter from the prompt generates', async () => {
    const phone = await context.newPage();
    watchForErrors(phone);
    await phone.setViewportSize({ width: 375, height: 812 });
    await phone.goto(server.url);
    await until(() => phone.locator('#model option').count()).toBeGreaterThan(1);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    // Tab from the top reaches the mode radios, then the model picker, then the prompt.
    await phone.keyboard.press('Tab'); // skip link
    await phone.keyboard.press('Tab');
    expect(await phone.evaluate(() => (document.activeElement as HTMLInputElement).name)).toBe('mode');
    await phone.keyboard.press('Tab');
    expect(await phone.evaluate(() => document.activeElement?.id)).toBe('model');
    await phone.keyboard.press('Tab');
    expect(await phone.evaluate(() => document.activeElement?.id)).toBe('prompt');
    await phone.keyboard.type('a green triangle');
    await phone.keyboard.press('Control+Enter');
    await phone.locator('#results img').first().waitFor();
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await phone.locator('#prompt').focus();
    await shot(phone, '11-phone-375');
    await phone.getByRole('button', { name: 'Send to Edit' }).first().click();
    await phone.getByLabel('Mask: paint the areas to repaint').waitFor({ state: 'visible' });
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await shot(phone, '12-phone-375-edit');
    await phone.close();
  });

  it('raised no script error, console error or failed request in all of the above', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe('playground with auth on', () => {
  let server: ServedCli;
  let key: string;

  beforeAll(async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'data'));
    const db = openSqliteDb({ path: join(dir, 'data', 'easel.sqlite') });
    key = (await db.createApiKey('playground')).key;
    await db.close();
    server = await serveCli(dir, { auth: { mode: 'keys' } });
  });

  afterAll(async () => {
    await server?.kill();
  });

  it('asks for a key, says so when one is refused, and works with a good one', async () => {
    const context = await browser.newContext({ colorScheme: 'dark' });
    const page = await context.newPage();
    onTestFailed(() => shot(page, 'failed-auth'));
    await page.goto(server.url);
    const field = page.getByLabel('API key', { exact: true });
    await field.waitFor({ state: 'visible' });
    expect(await page.locator('#auth-message').textContent()).toMatch(/needs an API key/);
    await shot(page, '13-auth-needed');

    await field.fill('esk-not-a-key');
    await page.getByRole('button', { name: 'Use key' }).click();
    await until(() => page.locator('#auth-message').textContent()).toMatch(/refused this key/);

    await field.fill(key);
    await page.getByRole('button', { name: 'Use key' }).click();
    await until(() => page.locator('#model option').count()).toBeGreaterThan(1);
    expect(await page.evaluate(() => sessionStorage.getItem('easel.apiKey'))).toBe(key);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    await page.getByLabel('Prompt', { exact: true }).fill('a blue square');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.locator('#results img').first().waitFor();
    await shot(page, '14-auth-generated');
    await context.close();
  });
});

interface SentPart {
  name: string;
  value: string;
  type?: string;
}

/**
 * Chromium reports no post data for a multipart body built from Blobs, so the page's fetch is wrapped (before any
 * page script runs) to keep each FormData body it sends: file parts as base64 of their bytes.
 */
async function keepMultipartBodies(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const sent: SentPart[][] = [];
    (window as unknown as { sent_: SentPart[][] }).sent_ = sent;
    const original = window.fetch.bind(window);
    window.fetch = async (input, init) => {
      if (init?.body instanceof FormData) {
        const parts: SentPart[] = [];
        for (const [name, v] of init.body.entries()) {
          if (typeof v === 'string') parts.push({ name, value: v });
          else {
            const bytes = new Uint8Array(await v.arrayBuffer());
            parts.push({ name, type: v.type, value: btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join('')) });
          }
        }
        sent.push(parts);
      }
      return original(input, init);
    };
  });
}

async function lastMultipart(page: Page): Promise<Map<string, SentPart>> {
  const all = await page.evaluate(() => (window as unknown as { sent_: SentPart[][] }).sent_);
  expect(all.length).toBeGreaterThan(0);
  return new Map(all.at(-1)!.map((p) => [p.name, p]));
}
