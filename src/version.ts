// Easel's version, read once from package.json so the CLI, GET /openapi.json and anything else agree.
// Read at run time because package.json sits outside tsconfig.build.json's rootDir (src/ and dist/ are both one level down).

import { readFileSync } from 'node:fs';

function readPackageVersion(): string {
  const url = new URL('../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: unknown; version?: unknown };
  if (pkg.name !== 'easel' || typeof pkg.version !== 'string') {
    throw new Error(`${url.pathname} is not Easel's package.json (name ${String(pkg.name)}, version ${String(pkg.version)})`);
  }
  return pkg.version;
}

/** The `version` field of Easel's package.json, e.g. "0.1.0". */
export const EASEL_VERSION: string = readPackageVersion();
