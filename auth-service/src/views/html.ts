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
 * Small, readable and self-contained: the CSP allows inline styles and nothing else, so there is no
 * external stylesheet, font, image or script. Contrast meets WCAG AA; focus is always visible.
 */
const STYLE = `
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f3f4f6;color:#111827;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{width:100%;max-width:24rem;margin:1rem;padding:2rem;background:#fff;border:1px solid #d1d5db;border-radius:.5rem}
h1{margin:0 0 .25rem;font-size:1.5rem}
p.brand{margin:0 0 1.5rem;color:#4b5563}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;padding:.5rem .75rem;font:inherit;border:1px solid #6b7280;border-radius:.375rem}
button{margin-top:1.5rem;width:100%;padding:.625rem;font:inherit;font-weight:600;color:#fff;background:#1d4ed8;border:0;border-radius:.375rem;cursor:pointer}
button:hover{background:#1e40af}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.alert{margin:0 0 1rem;padding:.75rem;border:1px solid #b91c1c;border-radius:.375rem;background:#fef2f2;color:#991b1b}
.meta{margin-top:1.5rem;font-size:.875rem;color:#4b5563}
a{color:#1d4ed8}
`;

/** A complete HTML document. `body` must already be escaped markup. */
export function renderDocument(opts: { title: string; brandName: string; body: string }): string {
  const title = `${opts.title} · ${opts.brandName}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${opts.body}
</main>
</body>
</html>
`;
}
