// The mask brush: a canvas the size of the image, over it on screen, where strokes mark what to repaint. The mask
// PNG sent with an edit is opaque black with every painted pixel at alpha 0 (OpenAI's rule: transparent = repaint).
// Pointer (mouse, pen, touch) or keyboard (arrows move the brush, Space paints).

const PAINT = '#ff2d55';

export class MaskPainter {
  brush = 40;
  erase = false;
  private painted = false;
  private last: { x: number; y: number } | null = null;
  private readonly ctx: CanvasRenderingContext2D;
  /** Where keyboard painting paints, as fractions of the image; shown by cursorEl while the canvas has focus. */
  private cursor = { x: 0.5, y: 0.5 };
  cursorEl: HTMLElement | null = null;

  constructor(private readonly canvas: HTMLCanvasElement) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas');
    this.ctx = ctx;
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture'] as const) canvas.addEventListener(type, () => this.up());
    canvas.addEventListener('keydown', (e) => this.key(e));
    canvas.addEventListener('focus', () => this.showCursor());
    canvas.addEventListener('blur', () => {
      if (this.cursorEl) this.cursorEl.hidden = true;
    });
  }

  /** Keyboard painting: the arrows move a brush cursor (Shift: further), Space or Enter paints (or erases) under it. */
  private key(e: KeyboardEvent): void {
    const step = e.shiftKey ? 0.1 : 0.02;
    const moves: Record<string, [number, number]> = {
      ArrowLeft: [-step, 0],
      ArrowRight: [step, 0],
      ArrowUp: [0, -step],
      ArrowDown: [0, step],
    };
    const move = moves[e.key];
    if (move) {
      this.cursor.x = Math.min(1, Math.max(0, this.cursor.x + move[0]));
      this.cursor.y = Math.min(1, Math.max(0, this.cursor.y + move[1]));
      this.showCursor();
    } else if (e.key === ' ' || e.key === 'Enter') {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) return; // Ctrl+Enter runs the request
      this.dot(this.cursor.x * this.canvas.width, this.cursor.y * this.canvas.height);
    } else return;
    e.preventDefault();
  }

  private showCursor(): void {
    const el = this.cursorEl;
    if (!el) return;
    el.hidden = false;
    el.style.left = `${this.cursor.x * 100}%`;
    el.style.top = `${this.cursor.y * 100}%`;
    el.style.width = el.style.height = `${this.brush}px`;
  }

  /** A fresh, empty mask for an image of this pixel size. */
  reset(width: number, height: number): void {
    this.canvas.width = width;
    this.canvas.height = height;
    this.clear();
  }

  clear(): void {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.painted = false;
  }

  get hasPaint(): boolean {
    return this.painted;
  }

  /** Paints (or erases) a dot at image coordinates: what a pointer does, and what a test or keyboard can call. */
  dot(x: number, y: number): void {
    this.stroke({ x, y }, { x, y });
  }

  async maskPng(): Promise<Blob> {
    const out = document.createElement('canvas');
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const ctx = out.getContext('2d')!;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.globalCompositeOperation = 'destination-out';
    ctx.drawImage(this.canvas, 0, 0);
    return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('mask encoding failed'))), 'image/png'));
  }

  /** Image pixels per CSS pixel: the brush size is in screen pixels. */
  private get scale(): number {
    return this.canvas.width / Math.max(1, this.canvas.clientWidth);
  }

  private at(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * this.scale, y: (e.clientY - r.top) * this.scale };
  }

  private down(e: PointerEvent): void {
    if (e.button !== 0) return;
    this.canvas.setPointerCapture(e.pointerId);
    const p = this.at(e);
    this.stroke(p, p);
    this.last = p;
  }

  private move(e: PointerEvent): void {
    if (!this.last) return;
    const p = this.at(e);
    this.stroke(this.last, p);
    this.last = p;
  }

  private up(): void {
    this.last = null;
  }

  private stroke(from: { x: number; y: number }, to: { x: number; y: number }): void {
    const ctx = this.ctx;
    ctx.globalCompositeOperation = this.erase ? 'destination-out' : 'source-over';
    ctx.strokeStyle = PAINT;
    ctx.lineWidth = this.brush * this.scale;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    if (!this.erase) this.painted = true;
  }
}
