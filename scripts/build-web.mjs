// Bundles the playground page (web/) into dist/web/ with esbuild: one minified ES module, one stylesheet and
// index.html, nothing fetched from elsewhere, so the server serves it offline. Run by `npm run build`; prints sizes.
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.ts'), style: join(root, 'web', 'style.css') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(join(root, 'web', 'index.html'), join(out, 'index.html'));

const sizes = ['index.html', 'app.js', 'style.css'].map((f) => {
  const bytes = statSync(join(out, f)).size;
  const gz = gzipSync(readFileSync(join(out, f))).length;
  return `${f} ${(bytes / 1024).toFixed(1)} KiB (${(gz / 1024).toFixed(1)} KiB gzipped)`;
});
console.log(`playground: dist/web: ${sizes.join(', ')}`);
