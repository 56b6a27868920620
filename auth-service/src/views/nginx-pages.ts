/**
 * The pages nginx serves itself (snippets/gate-server.conf, `location ^~ /_gate/errors/`), rendered
 * with the same shell, stylesheet, BRAND_NAME and theme as the auth service's pages. The auth service
 * (and `npm run gate-files`) writes them at start-up next to the gate config; nginx serves them with
 * SSI on, which fills in, per request:
 *   - the request id ($request_id, the same id the access log and the auth service's logs carry);
 *   - on the 403 page, who is signed in ($gate_log_user: the session the policy refused).
 * SSI's entity encoding escapes both, so a username such as `<script>` is shown as text.
 * Nothing else in these files is an SSI directive: page-theme.ts refuses a '<' in the theme's CSS,
 * and escapeHtml turns BRAND_NAME's '<' into '&lt;'.
 */
import type { PageTheme } from './html.js';
import { renderMessagePage } from './message-page.js';

/** File name → page. nginx/gate.conf's maps and error_page lines name these files. */
export type NginxPageName = '400.html' | '403.html' | '429.html' | '50x.html' | '50x-auth.html';

/** An SSI echo of an nginx variable, HTML-escaped by nginx. */
function ssiEcho(variable: string): string {
  return `<!--# echo var="${variable}" encoding="entity" default="" -->`;
}

const START_PAGE = { href: '/', text: 'Back to the start page' };

export function renderNginxPages(brandName: string, theme: PageTheme): Record<NginxPageName, string> {
  const page = (title: string, message: string, trustedMarkup = '') =>
    renderMessagePage({ brandName, theme, title, message, link: START_PAGE, trustedMarkup, trustedRequestIdMarkup: ssiEcho('request_id') });
  const signedInAs =
    `<!--# if expr="$gate_log_user" --><p>You are signed in as <strong>${ssiEcho('gate_log_user')}</strong>.</p>\n<!--# endif -->` +
    '<form method="post" action="/logout"><button type="submit">Sign out and use another account</button></form>\n';
  return {
    '400.html': page(
      'Bad request',
      'The address of this request could not be understood safely (for example, it contains "..;", a backslash or a doubly encoded character).',
    ),
    '403.html': page('Access denied', 'This page is not available to you. If you need it, ask your administrator for access.', signedInAs),
    '429.html': page('Too many requests', 'Too many requests arrived from your address. Wait a moment, then try again.'),
    '50x.html': page('Application unavailable', 'The application behind this gateway is not answering right now. Try again in a moment.'),
    '50x-auth.html': page(
      'Sign-in unavailable',
      'The sign-in service of this gateway is not answering right now, so signing in and out does not work. Try again in a moment.',
    ),
  };
}
