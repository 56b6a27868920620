/**
 * How a server-side session names its user: one key per account, whatever the spelling, so that
 * `npm run sessions -- list --user kirk` and `npm run users -- revoke kirk` find every session of it.
 */
import { MUTABLE_USERNAME_SOURCES } from '../../../njs/src/core/session-contract.js';
import { usernameKey } from '../security/username-key.js';

/** The kinds of source a session row records (an Entra sign-in is `oidc`; a custom module is `custom`). */
export type SessionSource = 'local' | 'tableau' | 'oidc' | 'custom';

/** `local` and `tableau` as they are; `oidc`/`azure` → `oidc`; any other `src` is a custom module's id. */
export function sessionSourceOf(src: string): SessionSource {
  if (src === 'local' || src === 'tableau') return src;
  if (MUTABLE_USERNAME_SOURCES.includes(src)) return 'oidc';
  return 'custom';
}

/**
 * `<src>:<username key>` (NFKC + case fold, as logins match) for sources whose usernames are account
 * keys; `<src>:<sub>` for OIDC/Entra, whose usernames the user or a tenant admin can change. The same
 * rule as `qualifiedUserId` in the shared contract, with the username folded.
 */
export function sessionUserKey(src: string, username: string, sub: string): string {
  return MUTABLE_USERNAME_SOURCES.includes(src) ? `${src}:${sub}` : `${src}:${usernameKey(username)}`;
}

/**
 * The key for a user named on the command line: `kirk` means the local account (as in the access
 * policy), `tableau:kirk` the Tableau one, `azure:<object id>` an Entra user. Usernames cannot contain
 * `:`, so the first one always separates the source.
 * Not checked: that the source is configured or that the user exists.
 */
export function userKeyFromArgument(arg: string): string {
  const colon = arg.indexOf(':');
  if (colon <= 0) return sessionUserKey('local', arg, '');
  const src = arg.slice(0, colon);
  const rest = arg.slice(colon + 1);
  return sessionUserKey(src, rest, rest);
}

/** What `--user` selects in the audit trail: the account's events, and the attempts made under its name. */
export function auditUserFromArgument(arg: string): { userKey: string; nameKey: string } {
  const colon = arg.indexOf(':');
  return { userKey: userKeyFromArgument(arg), nameKey: usernameKey(colon <= 0 ? arg : arg.slice(colon + 1)) };
}
