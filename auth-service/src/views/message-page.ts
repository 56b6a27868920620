import { escapeHtml, renderDocument } from './html.js';

export interface MessagePageInput {
  brandName: string;
  title: string;
  /** Plain text shown in a role="alert" box. */
  message: string;
  /** A way forward, e.g. "Start again" → /login?rd=… */
  link?: { href: string; text: string };
  /** Shown so a user can quote it to support; it is also in every log line of the request. */
  requestId?: string;
}

/** Error and notice pages: 400, 403, 404, 429, 500, 503. Never includes error details. */
export function renderMessagePage(input: MessagePageInput): string {
  const link = input.link ? `<p><a href="${escapeHtml(input.link.href)}">${escapeHtml(input.link.text)}</a></p>\n` : '';
  const requestId = input.requestId ? `<p class="meta">Request id: <code>${escapeHtml(input.requestId)}</code></p>\n` : '';
  const body = `<h1>${escapeHtml(input.title)}</h1>
<p class="brand">${escapeHtml(input.brandName)}</p>
<p class="alert" role="alert">${escapeHtml(input.message)}</p>
${link}${requestId}`;
  return renderDocument({ title: input.title, brandName: input.brandName, body });
}
