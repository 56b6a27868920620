import { afterAll, describe, expect, test } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { renderLoginPage } from './login-page.js';
import { renderNginxPages } from './nginx-pages.js';
import { loadPageTheme } from './page-theme.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-theme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, content: string | Buffer): string {
  const at = join(dir, name);
  writeFileSync(at, content);
  return at;
}
// A real 1x1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

describe('BRAND_CSS_FILE and BRAND_LOGO_FILE', () => {
  test('a CSS file and a PNG logo are inlined into the auth pages and the nginx pages alike', () => {
    const result = loadPageTheme(file('theme.css', ':root{--gw-accent:#7c2d12}\n'), file('logo.png', PNG));
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.theme.logoSrc).toBe(`data:image/png;base64,${PNG.toString('base64')}`);
    const pages = [renderLoginPage({ brandName: 'Acme', returnPath: '/', csrfToken: 't', theme: result.theme }), ...Object.values(renderNginxPages('Acme', result.theme))];
    for (const html of pages) {
      expect(html).toContain(':root{--gw-accent:#7c2d12}');
      expect(html).toContain(`<img src="data:image/png;base64,${PNG.toString('base64')}" alt="">`);
      // The operator's rule comes after the built-in one, so it wins.
      expect(html.indexOf('--gw-accent:#7c2d12')).toBeGreaterThan(html.indexOf('--gw-accent:#1d4ed8'));
    }
  });

  test('an SVG logo is accepted as image/svg+xml', () => {
    const result = loadPageTheme(undefined, file('logo.svg', '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'));
    expect(result.ok && result.theme.logoSrc?.startsWith('data:image/svg+xml;base64,')).toBe(true);
  });

  const unreadable = join(dir, 'locked.css');
  writeFileSync(unreadable, 'a{}');
  chmodSync(unreadable, 0o000);
  mkdirSync(join(dir, 'folder.css'), { recursive: true });
  test.each([
    ['a missing CSS file', () => [join(dir, 'nope.css'), undefined], /^BRAND_CSS_FILE: no such file \(received ".*nope\.css"\)$/],
    ['a folder', () => [join(dir, 'folder.css'), undefined], /^BRAND_CSS_FILE: must be a file/],
    ['an empty CSS file', () => [file('empty.css', ''), undefined], /^BRAND_CSS_FILE: is empty/],
    ['CSS over 64 KiB (the pages would carry it on every answer)', () => [file('big.css', 'a{}'.repeat(30_000)), undefined], /^BRAND_CSS_FILE: must be at most 64 KiB \(it has 88 KiB\)/],
    ['CSS that closes the <style> (markup injection into every page)', () => [file('inject.css', 'a{}\n</style><script>alert(1)</script>'), undefined], /^BRAND_CSS_FILE: must not contain '<' \(line 2\)/],
    ['CSS with an SSI directive (nginx runs SSI on its pages)', () => [file('ssi.css', '<!--# include virtual="/secret" -->'), undefined], /^BRAND_CSS_FILE: must not contain '<' \(line 1\)/],
    ['CSS that is not UTF-8', () => [file('latin1.css', Buffer.from([0x61, 0x7b, 0xe9, 0x7d])), undefined], /^BRAND_CSS_FILE: must be UTF-8 text/],
    ['a logo of another type', () => [undefined, file('logo.bmp', 'BM')], /^BRAND_LOGO_FILE: must be a \.png, \.svg, \.jpg, \.gif or \.webp file/],
    ['a "PNG" that is HTML', () => [undefined, file('fake.png', '<html><script>alert(1)</script>')], /^BRAND_LOGO_FILE: is not a PNG image/],
    ['an "SVG" without <svg>', () => [undefined, file('fake.svg', 'hello')], /^BRAND_LOGO_FILE: is not a SVG image/],
    ['a logo over 64 KiB', () => [undefined, file('big.png', Buffer.concat([PNG, Buffer.alloc(70_000)]))], /^BRAND_LOGO_FILE: must be at most 64 KiB/],
  ] as Array<[string, () => [string | undefined, string | undefined], RegExp]>)('refuses %s', (_name, args, expected) => {
    const [css, logo] = args();
    const result = loadPageTheme(css, logo);
    expect(result.ok ? [] : result.errors).toEqual([expect.stringMatching(expected)]);
  });

  test('an unreadable file is named as such (unless running as root, who reads anything)', () => {
    const result = loadPageTheme(unreadable, undefined);
    if (process.getuid?.() === 0) expect(result.ok).toBe(true);
    else expect(result.ok ? [] : result.errors).toEqual(['BRAND_CSS_FILE: not readable (permission denied) (received ' + JSON.stringify(unreadable) + ')']);
  });

  test('loadConfig reports both theme problems with every other problem, at once', () => {
    const result = loadConfig({ BRAND_CSS_FILE: join(dir, 'nope.css'), BRAND_LOGO_FILE: join(dir, 'nope.png'), BRAND_NAME: 'x'.repeat(81) });
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^BRAND_CSS_FILE: no such file/),
        expect.stringMatching(/^BRAND_LOGO_FILE: no such file/),
        expect.stringMatching(/^BRAND_NAME: /),
        expect.stringMatching(/^DATABASE_URL: /),
      ]),
    );
  });
});
