/// <reference types="njs-types/ngx_http_js_module" />
/**
 * The second half of a silent renewal (issue 9): a module of its own, imported only in @gate_renew
 * (snippets/gate-server.conf), so the gate's requests never build its functions (njs builds every
 * module-level function again for each request).
 */
import { act, decide, decisionApp, loadRuntime, logGateError, type GateAction } from './adapter.js';
import { readCookie, setCookieValue } from './core/cookie.js';

/**
 * `js_content renew.resume;` in @gate_renew (`js_import renew from renew.js;` there only), after `auth_request /_gate/renew` succeeded and
 * `$gate_renewed_cookie` holds the auth service's Set-Cookie line. Decides the request again on the
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
    const token = setCookieValue(setCookie, name);
    if (token === null) throw new Error('the renewal answered without a session cookie');
    const cookie = readCookie(r.headersIn.Cookie, name);
    const others = cookie.status === 'ok' ? cookie.rest : '';
    // The app the gate decided before the renewal (kept by act): the renewal's subrequest ran the
    // server's `set $gate_app` again.
    const cookies = others === '' ? name + '=' + token : name + '=' + token + '; ' + others;
    action = act(r, decide(r, runtime, cookies, undefined, decisionApp(v)));
    if (action === 'renew') {
      // A renewed token that is already expired (clocks apart): refuse rather than loop.
      v.gate_reason = 'renewal-expired';
      action = 'deny';
    } else if (action === 'allow') {
      v.gate_reason = 'session-renewed';
    }
    r.headersOut['Set-Cookie'] = [setCookie];
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
