/** One dependency check for a readiness probe: run it within a deadline and time it. */

export interface CheckResult {
  ok: boolean;
  ms: number;
  detail?: string;
}

/** `ok` when `fn` settles in time; otherwise the error (or the timeout) as `detail`. Never throws. */
export async function timedCheck(fn: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([fn(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)))]);
    return { ok: true, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { ok: false, ms: Math.round(performance.now() - t0), detail: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
