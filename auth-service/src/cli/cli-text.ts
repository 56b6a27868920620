/** Text helpers shared by the operator CLIs (users, policy): one-line errors, never a stack. */

/** For the operator at the terminal: which connection failed and how (never includes credentials). */
export function describeCause(cause: unknown): string {
  const { code, message, errors } = (cause ?? {}) as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof message === 'string' && message !== '') return message;
  if (Array.isArray(errors) && errors.length > 0) return describeCause(errors[0]);
  return typeof code === 'string' ? code : 'unknown cause';
}

/** Folds a multi-line message into one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
