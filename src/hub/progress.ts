// A dependency-free download progress display for `easel models pull`: a redrawn bar on a terminal,
// plain one-line messages (start, done) when stderr is a pipe or a log file.
import type { ProgressEvent } from './hf.js';

export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export interface ProgressReporter {
  /** Feed every event from pullModel's onProgress. */
  update(event: ProgressEvent): void;
  /** Finish the current line. */
  done(): void;
}

export interface ProgressOptions {
  /** Defaults to stream.isTTY. */
  tty?: boolean;
  /** Redraw interval on a terminal. Default 100 ms. */
  intervalMs?: number;
  now?: () => number;
}

interface Writable {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function createProgressReporter(stream: Writable = process.stderr, opts: ProgressOptions = {}): ProgressReporter {
  const tty = opts.tty ?? stream.isTTY === true;
  const interval = opts.intervalMs ?? 100;
  const now = opts.now ?? Date.now;
  let file: string | undefined;
  let startedAt = 0;
  let startBytes = 0;
  let lastDraw = 0;
  let finished = new Set<string>();
  let lineOpen = false;

  const render = (e: ProgressEvent) => {
    const cols = Math.max(40, stream.columns ?? 80);
    const elapsed = (now() - startedAt) / 1000;
    const rate = elapsed > 0 ? (e.received - startBytes) / elapsed : 0;
    const amount = e.total !== undefined ? `${formatBytes(e.received)}/${formatBytes(e.total)}` : formatBytes(e.received);
    const speed = rate > 0 ? ` ${formatBytes(rate)}/s` : '';
    const pct = e.total ? Math.min(1, e.received / e.total) : undefined;
    const tail = `${pct !== undefined ? ` ${String(Math.floor(pct * 100)).padStart(3)}%` : ''} ${amount}${speed}`;
    const name = e.file.length > 32 ? `…${e.file.slice(-31)}` : e.file.padEnd(Math.min(32, Math.max(e.file.length, 20)));
    const barWidth = Math.max(0, cols - name.length - tail.length - 5);
    let bar = '';
    if (pct !== undefined && barWidth >= 10) {
      const full = Math.round(pct * barWidth);
      bar = ` [${'#'.repeat(full)}${'-'.repeat(barWidth - full)}]`;
    }
    stream.write(`\r\x1b[K${name}${bar}${tail}`);
    lineOpen = true;
  };

  const closeLine = () => {
    if (lineOpen) stream.write('\n');
    lineOpen = false;
  };

  return {
    update(e) {
      const complete = e.total !== undefined && e.received >= e.total;
      if (e.file !== file) {
        if (tty) closeLine();
        file = e.file;
        startedAt = now();
        startBytes = e.received;
        lastDraw = 0;
        if (!tty && !complete) {
          const size = e.total !== undefined ? ` (${formatBytes(e.total)})` : '';
          const resumed = e.received > 0 ? `, resuming at ${formatBytes(e.received)}` : '';
          stream.write(`downloading ${e.file}${size}${resumed}\n`);
        }
      }
      if (complete) {
        if (finished.has(e.file)) return;
        finished.add(e.file);
        if (tty) {
          render(e);
          closeLine();
        } else {
          stream.write(`done ${e.file} (${formatBytes(e.received)})\n`);
        }
        return;
      }
      if (tty && now() - lastDraw >= interval) {
        lastDraw = now();
        render(e);
      }
    },
    done() {
      if (tty) closeLine();
      finished = new Set();
      file = undefined;
    },
  };
}
