/**
 * A secret given either inline (NAME) or as a file (NAME_FILE, e.g. a Docker or Kubernetes secret),
 * checked with describeWeakSecret. Shared by JWT_SECRET and TABLEAU_CONNECTED_APP_SECRET_VALUE.
 */
import { readFileSync } from 'node:fs';
import { describeWeakSecret, SECRET_ADVICE } from './secret-strength.js';

/**
 * Returns the secret, or undefined after pushing every problem to `errors` (the variable's name, the
 * rule, never the value). Exactly one of `inline` and `file` must be set (`required` says how to
 * end "is required, or NAME_FILE naming a file that holds it"). The file is read once, its final
 * CR/LF removed (editors and `echo` add one that is not part of the secret). `advice` replaces the
 * generic "generate one with openssl" hint where the secret is issued elsewhere.
 */
export function readSecretSetting(
  name: string,
  inline: string | undefined,
  file: string | undefined,
  errors: string[],
  opts: { required?: string; advice?: string } = {},
): string | undefined {
  const advise = (weak: string) => (opts.advice === undefined ? weak : weak.replace(SECRET_ADVICE, opts.advice));
  if (inline !== undefined && file !== undefined) {
    errors.push(`${name}: set exactly one of ${name} and ${name}_FILE (both are set; values masked)`);
    return undefined;
  }
  if (inline === undefined && file === undefined) {
    errors.push(`${name}: is required, or ${name}_FILE naming a file that holds it${opts.required === undefined ? '' : `: ${opts.required}`} (received nothing)`);
    return undefined;
  }
  if (inline !== undefined) {
    const weak = describeWeakSecret(inline);
    if (weak) errors.push(`${name}: ${advise(weak)}`);
    return weak ? undefined : inline;
  }
  let contents: string;
  try {
    contents = readFileSync(file!, 'utf8').replace(/[\r\n]+$/, '');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    errors.push(`${name}_FILE: must name a readable file (received ${JSON.stringify(file)}: ${typeof code === 'string' ? code : 'unreadable'})`);
    return undefined;
  }
  const weak = describeWeakSecret(contents);
  if (weak) errors.push(`${name}_FILE: the file's contents ${advise(weak)}`);
  return weak ? undefined : contents;
}
