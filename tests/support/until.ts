/**
 * Waiting on an event instead of sleeping: `until` polls a check until it
 * holds (or returns a value), and fails with what it waited for once a
 * generous deadline passes. The poll interval is not a guess at how long
 * something takes; the deadline only bounds a test that would otherwise hang.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20));
  }
}
