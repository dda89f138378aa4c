// Where images are shown: the result cards of the last request, the history thumbnails (from IndexedDB) and the
// large viewer, each with Download and Send to Edit. Object URLs are revoked when what shows them is replaced.
import { byId, show } from './dom.js';
import { clearHistory, type HistoryEntry, listHistory } from './history.js';

/** The download name: Easel's id and the format's usual extension. */
export function fileName(e: HistoryEntry): string {
  return `easel-${e.id}.${e.format === 'jpeg' ? 'jpg' : e.format}`;
}

function button(text: string, onClick: () => void, className = ''): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.className = className;
  b.addEventListener('click', onClick);
  return b;
}

/** A set of object URLs dropped together. */
class Urls {
  private urls: string[] = [];
  of(blob: Blob): string {
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    return url;
  }
  revoke(): void {
    for (const u of this.urls.splice(0)) URL.revokeObjectURL(u);
  }
}

export class Gallery {
  private readonly results = byId<HTMLUListElement>('results');
  private readonly resultsEmpty = byId('results-empty');
  private readonly history = byId<HTMLUListElement>('history');
  private readonly historyEmpty = byId('history-empty');
  private readonly clearButton = byId<HTMLButtonElement>('clear-history');
  private readonly viewer = byId<HTMLDialogElement>('viewer');
  private readonly viewerImage = byId<HTMLImageElement>('viewer-image');
  private readonly viewerCaption = byId('viewer-caption');
  private readonly viewerDownload = byId<HTMLAnchorElement>('viewer-download');
  private readonly resultUrls = new Urls();
  private readonly historyUrls = new Urls();
  private readonly viewerUrls = new Urls();
  private viewing: HistoryEntry | null = null;

  constructor(private readonly sendToEdit: (e: HistoryEntry) => void) {
    this.clearButton.addEventListener('click', () => void clearHistory().then(() => this.renderHistory()));
    byId('viewer-close').addEventListener('click', () => this.viewer.close());
    byId('viewer-edit').addEventListener('click', () => {
      const e = this.viewing;
      this.viewer.close();
      if (e) this.sendToEdit(e);
    });
    this.viewer.addEventListener('close', () => this.viewerUrls.revoke());
  }

  get viewerOpen(): boolean {
    return this.viewer.open;
  }

  clearResults(): void {
    this.results.replaceChildren();
    this.resultUrls.revoke();
  }

  /** Shows or hides the "images appear here" line. */
  showEmpty(empty: boolean): void {
    show(this.resultsEmpty, empty);
  }

  addResults(entries: HistoryEntry[]): void {
    entries.forEach((e, i) => {
      this.results.append(this.card(e, i));
    });
    this.showEmpty(this.results.childElementCount === 0);
  }

  async renderHistory(): Promise<void> {
    const entries = await listHistory().catch(() => []);
    this.historyUrls.revoke();
    this.history.replaceChildren(
      ...entries.map((e) => {
        const li = document.createElement('li');
        const open = button('', () => this.open(e), 'open');
        open.title = `${e.prompt || e.mode} · ${e.model} · ${e.size}`;
        open.append(this.image(e, this.historyUrls, `${e.prompt || e.mode} (${e.model}, ${e.size})`));
        li.append(open);
        return li;
      }),
    );
    show(this.historyEmpty, entries.length === 0);
    this.clearButton.disabled = entries.length === 0;
  }

  open(e: HistoryEntry): void {
    this.viewerUrls.revoke();
    this.viewing = e;
    const url = this.viewerUrls.of(e.blob);
    this.viewerImage.src = url;
    this.viewerImage.alt = e.prompt || e.mode;
    this.viewerCaption.textContent = `${e.prompt ? `“${e.prompt}” · ` : ''}${e.model} · ${e.size} ${e.format}${e.seed ? ` · seed ${e.seed}` : ''}`;
    this.viewerDownload.href = url;
    this.viewerDownload.download = fileName(e);
    this.viewer.showModal();
  }

  private image(e: HistoryEntry, urls: Urls, alt: string): HTMLImageElement {
    const img = document.createElement('img');
    img.src = urls.of(e.blob);
    img.alt = alt;
    return img;
  }

  private card(e: HistoryEntry, i: number): HTMLLIElement {
    const li = document.createElement('li');
    const img = this.image(e, this.resultUrls, `Result ${i + 1}: ${e.prompt || e.mode} (${e.size})`);
    const open = button('', () => this.open(e), 'open');
    open.setAttribute('aria-label', `Open image ${i + 1} large`);
    open.append(img);
    const download = Object.assign(document.createElement('a'), {
      className: 'button',
      href: img.src,
      download: fileName(e),
      textContent: 'Download',
    });
    const note = Object.assign(document.createElement('span'), { className: 'field-note', textContent: `${e.size} ${e.format}` });
    const row = document.createElement('div');
    row.className = 'row';
    row.append(
      download,
      button('Send to Edit', () => this.sendToEdit(e)),
      note,
    );
    li.append(open, row);
    return li;
  }
}
