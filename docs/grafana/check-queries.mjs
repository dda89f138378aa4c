// Runs every query of easel.json against a real Prometheus that scrapes Easel, and prints what each returns: a
// dashboard that imports but whose queries fail or match nothing is caught here (docs/observability.md).
// Usage: node docs/grafana/check-queries.mjs [http://127.0.0.1:9090] [scrape job, default easel]
import { readFileSync } from 'node:fs';

const base = process.argv[2] ?? 'http://127.0.0.1:9090';
const job = process.argv[3] ?? 'easel';
const dashboard = JSON.parse(readFileSync(new URL('./easel.json', import.meta.url), 'utf8'));
let failed = 0;
for (const panel of dashboard.panels) {
  for (const target of panel.targets ?? []) {
    const query = target.expr.replaceAll('$job', job).replaceAll('$__rate_interval', '1m');
    const res = await fetch(`${base}/api/v1/query?${new URLSearchParams({ query })}`);
    const body = await res.json();
    const series = body.data?.result?.length ?? 0;
    if (body.status !== 'success') failed++;
    console.log(`${body.status === 'success' ? 'ok ' : 'ERR'} ${String(series).padStart(3)} series  ${panel.title}: ${body.error ?? query}`);
  }
}
process.exit(failed ? 1 : 0);
