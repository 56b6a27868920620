/** Polls `cond` (sync or async) every 50 ms; true once it holds, false when `timeoutMs` passes first. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * Waits until nginx on 127.0.0.1:`port` answers HTTP (its own /_gate/health, which needs no session
 * and reaches no upstream): a TCP connect alone (waitForPort) was seen to succeed moments before the
 * first request was refused or reset on a loaded machine. Throws after `timeoutMs`, naming the port.
 */
export async function waitForHttp(port: number, timeoutMs: number): Promise<void> {
  const { rawRequest } = await import('./http.js');
  const answered = await waitUntil(
    () =>
      rawRequest(port, 'GET', '/_gate/health', { accept: 'application/json' }).then(
        () => true,
        () => false,
      ),
    timeoutMs,
  );
  if (!answered) throw new Error(`nothing answered HTTP on 127.0.0.1:${port} within ${timeoutMs} ms`);
}
