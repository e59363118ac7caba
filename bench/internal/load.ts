/**
 * Two ways to drive load from inside a process: closed loop (a fixed number
 * of operations in flight) and open loop (a steady rate, whatever the
 * latency). Open loop is what dispatch latency needs: a slow operation must
 * not slow the arrivals, or the tail hides itself (coordinated omission).
 */

/** Runs `fn(0..count-1)` with at most `inFlight` running at once. */
export async function closedLoop(count: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

/**
 * Calls `fn(i)` for i = 0..count-1 at `perSecond`, on schedule: every
 * millisecond tick starts everything that is due, without waiting for
 * earlier calls. Resolves when every call has settled; `late` is how far
 * behind schedule the worst start was (a loaded event loop shows up here).
 */
export async function openLoop(
  count: number,
  perSecond: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ late: number; errors: number; firstError?: unknown }> {
  const start = performance.now();
  const pending: Promise<unknown>[] = [];
  let started = 0;
  let late = 0;
  let errors = 0;
  let firstError: unknown;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(count, Math.floor(((now - start) * perSecond) / 1000) + 1);
      while (started < due) {
        late = Math.max(late, now - (start + (started * 1000) / perSecond));
        pending.push(
          fn(started++).catch((err: unknown) => {
            errors++;
            firstError ??= err;
          }),
        );
      }
      if (started >= count) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  return { late, errors, firstError };
}
