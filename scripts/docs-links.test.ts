/**
 * The docs are several pages that link to each other's sections (README.md, docs/, examples/): every
 * relative link must name a file that exists and, for a Markdown file, a heading it has (GitHub's
 * anchor rule: lower case, punctuation dropped, spaces to '-'). Code blocks are skipped.
 */
import { describe, expect, test } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REPO_ROOT } from './lib/nginx-runtime.js';

function markdownFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    return statSync(path).isDirectory() ? markdownFiles(path) : name.endsWith('.md') ? [path] : [];
  });
}

function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

function anchorsIn(file: string): Set<string> {
  return new Set([...readFileSync(file, 'utf8').matchAll(/^#{1,6} (.*)$/gm)].map((m) => anchorOf(m[1]!)));
}

const files = [join(REPO_ROOT, 'README.md'), ...markdownFiles(join(REPO_ROOT, 'docs')), ...markdownFiles(join(REPO_ROOT, 'examples'))];

describe('links between the docs', () => {
  test('the pages are found (README, docs/, examples/)', () => {
    expect(files.map((f) => relative(REPO_ROOT, f))).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md', 'docs/settings.md', 'docs/production-checklist.md']));
  });

  test.each(files.map((f) => [relative(REPO_ROOT, f), f]))('%s: every relative link reaches a file and a heading', (_name, file) => {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const m of text.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^(https?:|mailto:)/.test(target)) continue;
      const [path, fragment] = target.split('#', 2) as [string, string | undefined];
      const full = path === '' ? file : join(dirname(file), path);
      if (!existsSync(full)) broken.push(`${target} (no such file)`);
      else if (fragment && full.endsWith('.md') && !anchorsIn(full).has(fragment)) broken.push(`${target} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });
});
