import { escapeHtml, renderDocument, type PageTheme } from './html.js';

export interface LoginPageInput {
  brandName: string;
  theme?: PageTheme;
  /** Already validated with safeReturnPath. */
  returnPath: string;
  csrfToken: string;
  /** Shown in a role="alert" box above the form. */
  error?: string;
  /** Re-filled after a failed attempt (never the password). */
  username?: string;
  /** False when LOGIN_METHODS has no password: only the provider button is shown. Default true. */
  passwordForm?: boolean;
  /** "Sign in with {displayName}" link to /login/oidc?rd=… */
  oidc?: { href: string; displayName: string };
  /** Just signed out (POST /logout sends the browser to /login?signed_out=1): says so above the form. */
  signedOut?: boolean;
}

/** The notice shown after sign-out. */
export const SIGNED_OUT_MESSAGE = 'You have been signed out.';

/** The sign-in form. Works without JavaScript; every field has a visible label. */
export function renderLoginPage(input: LoginPageInput): string {
  const username = input.username ?? '';
  const notice = input.signedOut === true && !input.error ? `<p class="notice" role="status">${SIGNED_OUT_MESSAGE}</p>\n` : '';
  const error = input.error ? `<p class="alert" role="alert" id="login-error">${escapeHtml(input.error)}</p>\n` : notice;
  const describedBy = input.error ? ' aria-describedby="login-error"' : '';
  // Focus goes where the user has to type next: the username, or the password after a failure.
  const focusUser = username === '' ? ' autofocus' : '';
  const focusPassword = username === '' ? '' : ' autofocus';
  const oidc = input.oidc ? `<p><a class="button" href="${escapeHtml(input.oidc.href)}">Sign in with ${escapeHtml(input.oidc.displayName)}</a></p>\n` : '';
  if (input.passwordForm === false) {
    const only = `<h1>Sign in</h1>\n${error}${oidc}`;
    return renderDocument({ title: 'Sign in', brandName: input.brandName, theme: input.theme, body: only });
  }
  const body = `<h1>Sign in</h1>
${error}${oidc}<form method="post" action="/login">
<input type="hidden" name="rd" value="${escapeHtml(input.returnPath)}">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrfToken)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${escapeHtml(username)}" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="64" required${describedBy}${focusUser}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" maxlength="1024" required${describedBy}${focusPassword}>
<button type="submit">Sign in</button>
</form>`;
  return renderDocument({ title: 'Sign in', brandName: input.brandName, theme: input.theme, body });
}
