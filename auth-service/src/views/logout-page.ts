import { renderDocument, type PageTheme } from './html.js';

/** GET /logout: a one-button form, so a typed or bookmarked /logout still works without a GET side effect. */
export function renderLogoutPage(input: { brandName: string; theme?: PageTheme }): string {
  const body = `<h1>Sign out</h1>
<form method="post" action="/logout">
<button type="submit">Sign out</button>
</form>`;
  return renderDocument({ title: 'Sign out', brandName: input.brandName, theme: input.theme, body });
}
