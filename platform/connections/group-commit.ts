import type { Redis } from 'ioredis';

/**
 * Group commit: many callers' writes of one kind go out as one statement.
 *
 * The first caller's write goes out at once (no added latency when the
 * process is idle); callers that arrive while `maxInFlight` statements are
 * running wait and go out together in the next one, up to `maxBatch` rows.
 * So under load one commit carries many jobs' records, and each job still
 * learns its own row's outcome. A failed statement fails every caller in it
 * (each then decides, as it would for its own statement).
 */
export interface GroupCommitOptions {
  /** @defaultValue 256 */
  maxBatch?: number;
  /** Statements of this kind in flight at once. @defaultValue 2 */
  maxInFlight?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<I, O> {
  private readonly queue: Waiting<I, O>[] = [];
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;

  /** `flush` answers one output per input, in order. */
  constructor(
    private readonly flush: (items: I[]) => Promise<O[]>,
    opts: GroupCommitOptions = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 256;
    this.maxInFlight = opts.maxInFlight ?? 2;
  }

  run(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight++;
      this.flush(batch.map((w) => w.item))
        .then(
          (out) => batch.forEach((w, i) => w.resolve(out[i]!)),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}

/** One command's outcome in a shared pipeline: its reply, or the error Redis gave for it alone. */
export type PipelineReply = [error: Error | null, value: unknown];

/** What `sharedPipeline` gives: run some commands in the next shared pipeline, each with its own reply. */
export type SharedPipeline = (commands: readonly (readonly string[])[]) => Promise<PipelineReply[]>;

const sharedPipelines = new WeakMap<Redis, SharedPipeline>();

/**
 * Commands of concurrent callers on one Redis, in shared pipelines (a group commit of round trips): the
 * first caller's commands go out at once; callers arriving while two pipelines are in flight go out
 * together in the next. A caller's commands stay together and in order, and each keeps its own reply
 * or error. Single Redis only: on a Cluster a pipeline must stay in one slot. One per connection.
 */
export function sharedPipeline(redis: Redis): SharedPipeline {
  let shared = sharedPipelines.get(redis);
  if (!shared) {
    const batches = new GroupCommit<readonly (readonly string[])[], PipelineReply[]>(async (callers) => {
      const pipeline = redis.pipeline();
      for (const commands of callers) for (const [command, ...args] of commands) pipeline.call(command!, ...args);
      const replies = await pipeline.exec();
      if (!replies) throw new Error('Redis pipeline returned nothing');
      let next = 0;
      return callers.map((commands) => replies.slice(next, (next += commands.length)) as PipelineReply[]);
    });
    shared = (commands) => batches.run(commands);
    sharedPipelines.set(redis, shared);
  }
  return shared;
}
