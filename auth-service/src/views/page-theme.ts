/**
 * Reads the operator's theme at start-up: BRAND_CSS_FILE (one CSS file, appended to the built-in
 * stylesheet) and BRAND_LOGO_FILE (an image shown next to BRAND_NAME). Both are inlined into every
 * page, the auth service's and nginx's (services/gate-files.ts writes those), so nothing is fetched
 * and the CSP stays closed: no external stylesheet, font or image.
 *
 * Checked: the file is readable, not empty and not too big; the CSS has no '<' (it sits inside
 * <style>, and nginx runs SSI on its pages: '</style>' or '<!--#' would break out); the logo's
 * first bytes match its extension. Not checked: that the CSS parses, or that its colours keep the
 * pages' contrast (docs/operations.md "Theming" says what to keep).
 */
import { readFileSync, statSync } from 'node:fs';
import { NO_THEME, type PageTheme } from './html.js';

export const MAX_THEME_CSS_BYTES = 64 * 1024;
export const MAX_LOGO_BYTES = 64 * 1024;

const LOGO_TYPES: Record<string, { mediaType: string; looksRight: (b: Buffer) => boolean }> = {
  png: { mediaType: 'image/png', looksRight: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  jpg: { mediaType: 'image/jpeg', looksRight: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  jpeg: { mediaType: 'image/jpeg', looksRight: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  gif: { mediaType: 'image/gif', looksRight: (b) => b.subarray(0, 4).toString('latin1') === 'GIF8' },
  webp: { mediaType: 'image/webp', looksRight: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
  // An SVG in an <img> runs no script and loads nothing (browsers' "secure static mode").
  svg: { mediaType: 'image/svg+xml', looksRight: (b) => /<svg[\s>]/.test(b.subarray(0, 4096).toString('utf8')) },
};

/** Reads a file of at most `max` bytes, or says why not (one sentence, no stack). */
function readSmallFile(path: string, max: number): { ok: true; bytes: Buffer } | { ok: false; problem: string } {
  try {
    const st = statSync(path);
    if (!st.isFile()) return { ok: false, problem: 'must be a file' };
    if (st.size === 0) return { ok: false, problem: 'is empty' };
    if (st.size > max) return { ok: false, problem: `must be at most ${max / 1024} KiB (it has ${Math.ceil(st.size / 1024)} KiB)` };
    return { ok: true, bytes: readFileSync(path) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, problem: code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'not readable (permission denied)' : `cannot be read (${code ?? 'error'})` };
  }
}

/**
 * The theme from the two settings (undefined or '' = not set). Returns every problem at once, each
 * naming the variable, the rule and the value received.
 */
export function loadPageTheme(cssFile: string | undefined, logoFile: string | undefined): { ok: true; theme: PageTheme } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  let css = NO_THEME.css;
  let logoSrc = NO_THEME.logoSrc;
  if (cssFile !== undefined && cssFile !== '') {
    const read = readSmallFile(cssFile, MAX_THEME_CSS_BYTES);
    const text = read.ok ? read.bytes.toString('utf8') : '';
    if (!read.ok) errors.push(`BRAND_CSS_FILE: ${read.problem} (received ${JSON.stringify(cssFile)})`);
    else if (text.includes('\ufffd')) errors.push(`BRAND_CSS_FILE: must be UTF-8 text (received ${JSON.stringify(cssFile)})`);
    else if (text.includes('<')) {
      const line = text.slice(0, text.indexOf('<')).split('\n').length;
      errors.push(`BRAND_CSS_FILE: must not contain '<' (line ${line}); the CSS is inlined in each page's <style> (received ${JSON.stringify(cssFile)})`);
    } else css = `\n/* BRAND_CSS_FILE */\n${text}\n`;
  }
  if (logoFile !== undefined && logoFile !== '') {
    const ext = /\.([A-Za-z]+)$/.exec(logoFile)?.[1]?.toLowerCase() ?? '';
    const type = LOGO_TYPES[ext];
    if (type === undefined) {
      errors.push(`BRAND_LOGO_FILE: must be a .png, .svg, .jpg, .gif or .webp file (received ${JSON.stringify(logoFile)})`);
    } else {
      const read = readSmallFile(logoFile, MAX_LOGO_BYTES);
      if (!read.ok) errors.push(`BRAND_LOGO_FILE: ${read.problem} (received ${JSON.stringify(logoFile)})`);
      else if (!type.looksRight(read.bytes)) errors.push(`BRAND_LOGO_FILE: is not a ${ext.toUpperCase()} image (its first bytes say otherwise) (received ${JSON.stringify(logoFile)})`);
      else logoSrc = `data:${type.mediaType};base64,${read.bytes.toString('base64')}`;
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, theme: { css, logoSrc } };
}
