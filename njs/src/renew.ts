/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The second half of a silent renewal (issue 9): a module of its own, imported only in @gate_renew
 * (snippets/gate-server.conf), so the gate's requests never build its functions (njs builds every
 * module-level function again for each request).
 */
import { act, decide, decisionApp, loadRuntime, logGateError, type GateAction } from './adapter.js';
import { removeCookie, setCookieValue, type CookieHeaders } from './core/cookie.js';

/** The Cookie header(s) with every `name` cookie replaced by `name=value`. */
function withCookie(cookies: CookieHeaders, name: string, value: string): string {
  const others = removeCookie(cookies, name);
  return others === '' ? name + '=' + value : name + '=' + value + '; ' + others;
}

/**
 * `js_content renew.resume;` in @gate_renew (`js_import renew from renew.js;` there only), after `auth_request /_gate/renew` succeeded and
 * `$gate_renewed_cookie` holds the auth service's Set-Cookie line (and/or, with assertions on,
 * `$gate_renewed_assertion` the app's assertion cookie line). Decides the request again on the
 * renewed token (the session cookie of the request swapped for it), writes the same variables as
 * check, overwrites `$gate` with the new action (nginx keeps a js_set value for the whole request,
 * so the protected location would otherwise see 'renew' again), sends the Set-Cookie with the
 * response, and redirects internally to the request's own URI and arguments: the protected
 * location runs again with its method and body intact and acts on the new `$gate`.
 *
 * Fails closed: no usable renewed token, a renewed token the gate does not accept, or any exception
 * gives 'deny' (a 401 in the protected location; 'login' for a browser when the token is refused).
 * A URI whose decoded path holds '?' (`%3F`) cannot be redirected to without changing it (nginx
 * splits the arguments at the first '?'), so that request gets a 307 to itself with the new cookie
 * instead (browsers repeat it, body included).
 */
function resume(r: NginxHTTPRequest): void {
  const v = r.variables;
  let action: GateAction = 'deny';
  try {
    const runtime = loadRuntime();
    const name = runtime.config.cookieName;
    const setCookie = v.gate_renewed_cookie || '';
    // With ASSERTION_KEY_FILE: the Set-Cookie line of the app's new assertion (X-Gate-Assertion-Cookie),
    // alone when only the assertion was missing (the session token stays as it is).
    const setAssertion = v.gate_renewed_assertion || '';
    let cookies: CookieHeaders = r.headersIn.Cookie;
    const sent: string[] = [];
    if (setCookie !== '') {
      const token = setCookieValue(setCookie, name);
      if (token === null) throw new Error('the renewal answered without a session cookie');
      cookies = withCookie(cookies, name, token);
      sent.push(setCookie);
    } else if (setAssertion === '') {
      throw new Error('the renewal answered without a session cookie');
    }
    if (setAssertion !== '') {
      const assertionName = setAssertion.slice(0, setAssertion.indexOf('='));
      const assertion = setCookieValue(setAssertion, assertionName);
      if (assertionName === '' || assertion === null) throw new Error('the renewal answered an empty assertion cookie');
      cookies = withCookie(cookies, assertionName, assertion);
      sent.push(setAssertion);
    }
    // The app the gate decided before the renewal (kept by act): the renewal's subrequest ran the
    // server's `set $gate_app` again.
    action = act(r, decide(r, runtime, cookies, undefined, decisionApp(v)));
    if (action === 'renew') {
      // A renewed token that is already expired (clocks apart), or still no bound assertion: refuse
      // rather than loop.
      if (v.gate_reason !== 'assertion-missing') v.gate_reason = 'renewal-expired';
      action = 'deny';
    } else if (action === 'allow') {
      v.gate_reason = setCookie !== '' ? 'session-renewed' : 'assertion-issued';
    }
    r.headersOut['Set-Cookie'] = sent;
  } catch (e) {
    logGateError(r, e);
    action = 'deny';
  }
  v.gate = action;
  const uri = v.uri || '/';
  if (uri.indexOf('?') >= 0) {
    r.return(307, v.request_uri || '/');
    return;
  }
  r.internalRedirect(v.args ? uri + '?' + v.args : uri);
}

export default { resume };
