// The dependency rules of DESIGN.md, checked on the source: the API side plans and validates from model info
// without loading ONNX Runtime (so an API node in a cluster never does), and no module imports itself in a cycle.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', '..', 'src');

interface Edge {
  to: string;
  typeOnly: boolean;
}

/** Relative imports (as .ts paths) and bare package imports of one file, marking `import type` / `export type`. */
function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[4];
    const typeOnly = m[2] !== undefined;
    if (spec.startsWith('.')) edges.push({ to: resolve(dirname(file), spec.replace(/\.js$/, '.ts')), typeOnly });
    else edges.push({ to: spec, typeOnly });
  }
  return edges;
}

function allSources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? allSources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every module reachable from `entry` through value (runtime) imports. */
function runtimeClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (!f.startsWith(SRC) || !existsSync(f)) continue;
    for (const e of importsOf(f)) if (!e.typeOnly) stack.push(e.to);
  }
  return seen;
}

describe('layering', () => {
  it('the HTTP app, the model catalog, the planner and a cluster API node never load ONNX Runtime or the worker', () => {
    // cli/main.ts: the `easel` process itself, which imports the engine only inside the commands that run it.
    for (const entry of ['server/app.ts', 'server/catalog.ts', 'server/plan.ts', 'server/start-api.ts', 'jobs/bullmq.ts', 'cli/main.ts']) {
      const reached = [...runtimeClosure(join(SRC, entry))].map((f) => (f.startsWith(SRC) ? relative(SRC, f) : f));
      expect(reached, entry).not.toContain('onnxruntime-node');
      expect(
        reached.filter((f) => f.startsWith('worker/') || f === 'engine/backends/onnx.ts'),
        entry,
      ).toEqual([]);
    }
  });

  it('has no import cycles, counting type-only imports', () => {
    const files = allSources(SRC);
    const graph = new Map(
      files.map((f) => [
        f,
        importsOf(f)
          .map((e) => e.to)
          .filter((t) => t.startsWith(SRC)),
      ]),
    );
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      path.push(f);
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...path.slice(path.indexOf(t)), t].map((p) => relative(SRC, p)).join(' → '));
        else if (!state.has(t)) visit(t);
      }
      path.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
