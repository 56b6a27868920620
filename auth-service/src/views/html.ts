/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * An operator's look for every page (the auth service's and nginx's), from BRAND_CSS_FILE and
 * BRAND_LOGO_FILE (views/page-theme.ts reads and checks them at start-up).
 */
export interface PageTheme {
  /** CSS appended after the built-in stylesheet, so it wins; '' for none. Never contains '<'. */
  css: string;
  /** The logo as a data: URI (the CSP allows images from data: only), or null. */
  logoSrc: string | null;
}

export const NO_THEME: PageTheme = { css: '', logoSrc: null };

/**
 * The one stylesheet of every page. Inline, because the pages load nothing (the CSP allows inline
 * styles and data: images only), and nginx's own pages must look right when the auth service is
 * down. Colours are custom properties, so a theme changes them in one `:root{...}` rule.
 * Contrast: text 4.5:1 or more; the focus ring (amber-700) is 5:1 on the card and 4.6:1 on the page
 * background (WCAG 2.2 1.4.11 asks for 3:1), with a 2 px gap so it stands off any button colour.
 */
const STYLE = `
:root{--gw-page-bg:#f3f4f6;--gw-card-bg:#fff;--gw-text:#111827;--gw-muted:#4b5563;--gw-border:#d1d5db;--gw-accent:#1d4ed8;--gw-accent-hover:#1e40af;--gw-on-accent:#fff;--gw-focus:#b45309;--gw-alert-bg:#fef2f2;--gw-alert-text:#991b1b;--gw-alert-border:#b91c1c;--gw-notice-bg:#ecfdf5;--gw-notice-text:#065f46;--gw-notice-border:#047857;--gw-radius:.5rem;--gw-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:var(--gw-page-bg);color:var(--gw-text);font:16px/1.5 var(--gw-font)}
main{width:calc(100% - 2rem);max-width:26rem;margin:1rem;padding:2rem 1.5rem;background:var(--gw-card-bg);border:1px solid var(--gw-border);border-radius:var(--gw-radius)}
.brand{display:flex;align-items:center;gap:.75rem;margin:0 0 1.25rem;color:var(--gw-muted);font-weight:600}
.brand img{max-height:2.5rem;max-width:10rem}
h1{margin:0 0 1rem;font-size:1.5rem;line-height:1.25}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.5rem .75rem;font:inherit;color:inherit;background:var(--gw-card-bg);border:1px solid #6b7280;border-radius:.375rem}
button,a.button{display:block;margin-top:1.5rem;width:100%;padding:.625rem;font:inherit;font-weight:600;text-align:center;text-decoration:none;color:var(--gw-on-accent);background:var(--gw-accent);border:0;border-radius:.375rem;cursor:pointer}
button:hover,a.button:hover{background:var(--gw-accent-hover)}
:focus-visible{outline:3px solid var(--gw-focus);outline-offset:2px}
.alert,.notice{margin:0 0 1rem;padding:.75rem;border:1px solid var(--gw-alert-border);border-radius:.375rem;background:var(--gw-alert-bg);color:var(--gw-alert-text)}
.notice{border-color:var(--gw-notice-border);background:var(--gw-notice-bg);color:var(--gw-notice-text)}
.meta{margin-top:1.5rem;font-size:.875rem;color:var(--gw-muted);overflow-wrap:anywhere}
a{color:var(--gw-accent)}
`;

/** A complete HTML document. `body` must already be escaped markup. */
export function renderDocument(opts: { title: string; brandName: string; body: string; theme?: PageTheme }): string {
  const theme = opts.theme ?? NO_THEME;
  const title = `${opts.title} · ${opts.brandName}`;
  // The name is written next to the logo, so the image itself is decorative (alt="").
  const logo = theme.logoSrc === null ? '' : `<img src="${escapeHtml(theme.logoSrc)}" alt="">`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}${theme.css}</style>
</head>
<body>
<main>
<p class="brand">${logo}<span>${escapeHtml(opts.brandName)}</span></p>
${opts.body}
</main>
</body>
</html>
`;
}
