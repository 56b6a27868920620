import { escapeHtml, renderDocument, type PageTheme } from './html.js';

export interface MessagePageInput {
  brandName: string;
  theme?: PageTheme;
  title: string;
  /** Plain text shown in a role="alert" box. */
  message: string;
  /** A way forward, e.g. "Start again" → /login?rd=… */
  link?: { href: string; text: string };
  /** Shown so a user can quote it to support; it is also in every log line of the request. */
  requestId?: string;
  /**
   * Markup placed after the message, NOT escaped: only for text this code base writes itself (the
   * nginx pages' sign-out form and their SSI directives, see nginx-pages.ts), never for input.
   */
  trustedMarkup?: string;
  /** Instead of requestId: markup for the id, NOT escaped (the nginx pages' SSI echo). */
  trustedRequestIdMarkup?: string;
}

/** Error and notice pages: 400, 403, 404, 429, 500, 503. Never includes error details. */
export function renderMessagePage(input: MessagePageInput): string {
  const link = input.link ? `<p><a href="${escapeHtml(input.link.href)}">${escapeHtml(input.link.text)}</a></p>\n` : '';
  const idMarkup = input.trustedRequestIdMarkup ?? (input.requestId ? escapeHtml(input.requestId) : '');
  const requestId = idMarkup === '' ? '' : requestIdLine(idMarkup);
  const body = `<h1>${escapeHtml(input.title)}</h1>
<p class="alert" role="alert">${escapeHtml(input.message)}</p>
${input.trustedMarkup ?? ''}${link}${requestId}`;
  return renderDocument({ title: input.title, brandName: input.brandName, theme: input.theme, body });
}

/** The request id line of every page; `idMarkup` is escaped text or an nginx SSI echo. */
function requestIdLine(idMarkup: string): string {
  return `<p class="meta">Request id: <code>${idMarkup}</code></p>\n`;
}
