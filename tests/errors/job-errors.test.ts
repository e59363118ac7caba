/**
 * `toJobError`: how whatever a handler throws becomes the `JobError` data the
 * runtime records and decides retries on (platform/jobs/failure.ts). The
 * errors here are real ones: a refused connection, a failed fetch, a query
 * Postgres rejects, a failure wrapped by a library; not hand-made look-alikes.
 */
import { connect, createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { connectDb } from '../../platform/connections/index.ts';
import { JobFailure, toJobError } from '../../platform/jobs/index.ts';
import { isRetryable } from '../../shared/index.ts';

const db = connectDb(process.env.DATABASE_URL!, { pool: 1 });
afterAll(() => db.destroy());

/** A loopback port nothing listens on: one the system handed out and we released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const caught = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('it should have failed'),
    (e: unknown) => e,
  );

describe('toJobError', () => {
  it('keeps file paths out of an unexpected failure (a path Node could not open, a Rust source location), not URLs', async () => {
    const missing = `/tmp/parley-no-such-dir-${process.pid}/sub/file.txt`;
    const err = await caught(import('node:fs/promises').then((fs) => fs.readFile(missing)));
    const mapped = toJobError(err);
    expect(mapped.code).toBe('INTERNAL');
    expect(mapped.message).toMatch(/^ENOENT: no such file or directory, open '<path>'$/);
    // LanceDB's text for a batch its Rust side could not read (the path and position are the library's build's).
    const rust = toJobError(
      new Error('lance error: Execution error: Spill has sent an error, /rustc/59807616e1fa/library/core/src/task/poll.rs:291:44 Caused by: x'),
    );
    expect(rust.message).toBe('lance error: Execution error: Spill has sent an error, <path> Caused by: x');
    const url = toJobError(new Error('request to http://127.0.0.1:11500/api/embed failed; see https://example.test/docs/a/b'));
    expect(url.message).toBe('request to http://127.0.0.1:11500/api/embed failed; see https://example.test/docs/a/b');
  });

  it('keeps a JobFailure as it is, details included', () => {
    const e = new JobFailure('UPSTREAM_REJECTED', 'model "x" not found', { details: { host: 'h', status: 404 } });
    expect(toJobError(e)).toEqual({ code: 'UPSTREAM_REJECTED', message: 'model "x" not found', details: { host: 'h', status: 404 } });
  });

  it('maps a refused connection to UPSTREAM_UNAVAILABLE (retryable), naming the cause', async () => {
    const port = await closedPort();
    const err = await caught(
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      }),
    );
    const mapped = toJobError(err);
    expect(mapped).toEqual({ code: 'UPSTREAM_UNAVAILABLE', message: expect.stringMatching(/ECONNREFUSED.*\(ECONNREFUSED\)$/) });
    expect(isRetryable(mapped.code)).toBe(true);
  });

  it('finds the network cause under a failed fetch', async () => {
    const err = await caught(fetch(`http://127.0.0.1:${await closedPort()}/`));
    expect(err).toBeInstanceOf(TypeError);
    expect(toJobError(err)).toEqual({ code: 'UPSTREAM_UNAVAILABLE', message: 'fetch failed (ECONNREFUSED)' });
  });

  it('keeps our code when a library wraps our failure in its own error', () => {
    const ours = new JobFailure('BUDGET_EXHAUSTED', 'token budget exhausted');
    const wrapped = new Error('stream pipeline failed', { cause: new Error('transform threw', { cause: ours }) });
    const mapped = toJobError(wrapped);
    expect(mapped).toEqual({ code: 'BUDGET_EXHAUSTED', message: 'stream pipeline failed' });
    // The decision the wrapping would otherwise have changed: not retried.
    expect(isRetryable(mapped.code)).toBe(false);
  });

  it('maps an error Postgres raised to INTERNAL with its message', async () => {
    const err = await caught(db.raw('select * from no_such_table_here'));
    expect((err as { code?: string }).code).toBe('42P01');
    expect(toJobError(err)).toEqual({ code: 'INTERNAL', message: expect.stringContaining('relation "no_such_table_here" does not exist') });
  });

  it('maps a thrown non-error to INTERNAL with its text', () => {
    expect(toJobError('worker ran out of patience')).toEqual({ code: 'INTERNAL', message: 'worker ran out of patience' });
    expect(toJobError(undefined)).toEqual({ code: 'INTERNAL', message: 'undefined' });
  });
});
