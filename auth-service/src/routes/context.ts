import type { Response } from 'express';

/** Per-request values the middleware in app.ts puts on `res.locals`. */
export interface RequestLocals {
  requestId: string;
  /** The validated return path of a login form, so error pages can offer "start again". */
  returnPath?: string;
}

export function localsOf(res: Response): RequestLocals {
  return res.locals as RequestLocals;
}

/** `/login` or `/login?rd=…` for a validated return path. */
export function loginHref(returnPath: string | undefined): string {
  return returnPath === undefined || returnPath === '/' ? '/login' : `/login?rd=${encodeURIComponent(returnPath)}`;
}
