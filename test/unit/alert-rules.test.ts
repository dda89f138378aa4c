// The shipped alerting rules (docs/prometheus/alerts.yml) load in Prometheus' own checker and fire as their unit tests
// (docs/prometheus/alerts.test.yml) say, through Debian's promtool (.ci/run installs the prometheus package).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DIR = join(import.meta.dirname, '..', '..', 'docs', 'prometheus');

describe('Prometheus alerting rules', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', 'alerts.yml'], { cwd: DIR });
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their promtool unit tests', async () => {
    const { stdout, stderr } = await run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS/);
  });
});
