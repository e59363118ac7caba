/**
 * discussion.turn — one speaker turn of one room.
 *
 *   1. claim the turn on the room row (only the room's current turn job, so a
 *      stale or duplicate delivery skips, and one speaker runs at a time);
 *   2. pick the speaker (round-robin or the moderator; a retry keeps the pick);
 *   3. `turn_started` on the room stream; its seq orders the turn among the
 *      human messages, and the messages before it join the prompt;
 *   4. assemble the context within budget and stream the generation to the
 *      job stream (ctx.emitTokens) and the room stream (tagged turn + agent);
 *   5. commit: the turn document (MongoDB), short-term memory (Redis), then
 *      the room row, which records turn + 1 or finishes the room;
 *      `turn_finished` (+ `status`), then turn + 1 goes to the queue;
 *   6. if the unsummarised transcript no longer fits the budget, enqueue
 *      discussion.summarize.
 *
 * Interrupt = the job is cancelled: the partial text is committed as an
 * `interrupted` turn, the room carries on, and the job records `cancelled`.
 * A failure is retried by the runtime; on the last attempt (or a
 * non-retryable error) the turn is committed `failed` and the room pauses
 * with the reason.
 */
import { announceStatus, commitTurn, finishBeforeTurn, pauseForFailure, release, turnTokens } from '../../platform/discussions/index.ts';
import type { MemoryTurn } from '../../platform/discussions/index.ts';
import { recordSummaryJob } from '../../platform/discussions/index.ts';
import type { DiscussionRow, RoomMember } from '../../platform/discussions/index.ts';
import { JobFailure, toJobError } from '../../platform/jobs/index.ts';
import type { ChatChunk } from '../../platform/ollama/index.ts';
import { readRoomMessages, RoomStreamWriter } from '../../platform/streams/index.ts';
import { type discussionTurn, type DiscussionTurnResult, type JobError, type TurnStatus, type Usage } from '../../shared/index.ts';
import { assembleContext, contextBudget, summaryCut, type TimelineEntry } from '../discussions/context.ts';
import { askModerator, nextAfter, roundRobin, type Pick } from '../discussions/moderator.ts';
import type { DiscussionRuntime } from '../discussions/runtime.ts';
import { CANCELLED, SHUTDOWN, SUPERSEDED, type Handler, type HandlerContext } from '../runtime/handler.ts';
import { newChatRun, streamChat } from './chat-stream.ts';
import { estimateTokens } from './estimate.ts';

/** Turns after `afterTurn` up to `upToTurn`, from short-term memory when it has them all, else from the transcript. */
async function turnsBetween(rt: DiscussionRuntime, id: string, afterTurn: number, upToTurn: number): Promise<MemoryTurn[]> {
  if (upToTurn <= afterTurn) return [];
  const remembered = new Map((await rt.memory.recent(id)).map((t) => [t.turn, t]));
  const wanted = Array.from({ length: upToTurn - afterTurn }, (_, i) => afterTurn + 1 + i);
  if (wanted.every((n) => remembered.has(n))) return wanted.map((n) => remembered.get(n)!);
  const docs = await rt.transcripts.turns(id, { afterTurn, upToTurn });
  return docs.map((d) => ({ turn: d.turn, seq: d.startedSeq, agentId: d.agentId, agentName: d.agentName, text: d.text, status: d.status }));
}

function isCancel(ctx: HandlerContext<unknown>): boolean {
  return ctx.signal.aborted && ctx.signal.reason === CANCELLED;
}

export function discussionTurnHandler(rt: DiscussionRuntime): Handler<typeof discussionTurn> {
  return async (input, ctx) => {
    const { discussionId: id, turn } = input;
    const room = await rt.rooms.claimTurn(id, turn, ctx.jobId);
    if (!room) {
      const row = await rt.rooms.get(id);
      const reason = !row
        ? 'the room no longer exists'
        : row.turn_job_id !== ctx.jobId
          ? 'a newer turn job superseded this one'
          : `the room is ${row.status} at turn ${row.current_turn}`;
      ctx.log.info({ discussionId: id, turn, reason }, 'turn skipped');
      return { discussionId: id, turn, outcome: 'skipped', agentId: null, reason, usage: null } satisfies DiscussionTurnResult;
    }
    const roster = await rt.rooms.roster(id);
    if (roster.speakers.length === 0) throw new JobFailure('HANDLER_FAILED', 'the room has no speakers');
    const summary = await rt.transcripts.latestSummary(id, turn - 1);
    const earlier = await turnsBetween(rt, id, summary?.upToTurn ?? 0, turn - 1);

    // ── who speaks ──
    let interruptedEarly = false;
    let pick: Pick;
    if (room.speaker_id && roster.speakers.some((s) => s.id === room.speaker_id)) {
      // A retry keeps the pick, and the pick's cost as recorded when it was made (counted then, not again).
      const kept = await rt.redis.get(rt.keys.roomPickUsage(id, turn)).catch(() => null);
      pick = {
        agentId: room.speaker_id,
        pickedBy: room.policy.turns.kind === 'moderator' ? 'moderator' : 'round_robin',
        consensus: false,
        usage: kept ? (JSON.parse(kept) as Usage) : null,
      };
    } else {
      try {
        pick = await chooseSpeaker(rt, ctx, room, roster.speakers, roster.moderator, turn, earlier);
      } catch (err) {
        if (!isCancel(ctx)) throw err;
        // Interrupted while the moderator was deciding: the next speaker in order gets an empty, interrupted turn.
        interruptedEarly = true;
        pick = { agentId: nextAfter(roster.speakers, earlier.at(-1)?.agentId, turn).id, pickedBy: 'fallback', consensus: false, usage: null };
      }
      if (pick.consensus) {
        const reason = 'the moderator declared consensus';
        // The call is the room's (tokens_used) and the owner's: as this job's own usage (its result), which
        // the runtime records against the owner's ledger and budget when the job completes.
        await finishBeforeTurn(rt, { id, turn, jobId: ctx.jobId, reason, tokens: turnTokens({ usage: null, moderatorUsage: pick.usage }) });
        return { discussionId: id, turn, outcome: 'finished', agentId: null, reason, usage: pick.usage } satisfies DiscussionTurnResult;
      }
      await rt.rooms.setSpeaker(id, turn, ctx.jobId, pick.agentId);
      // The moderator's call is the owner's consumption too. A retry keeps the pick (above) and asks
      // again nothing, so this is counted once; the turn job's own usage stays the speaker's.
      if (pick.usage) {
        await ctx.addUsage(room.owner_id, pick.usage).catch((err: unknown) => ctx.log.warn({ err }, 'could not record the moderator usage'));
        await rt.redis.set(rt.keys.roomPickUsage(id, turn), JSON.stringify(pick.usage), 'EX', 86_400).catch(() => {});
      }
    }
    const speaker = roster.speakers.find((s) => s.id === pick.agentId)!;

    // ── turn_started, then the context as of that point in the room's timeline ──
    const writer = new RoomStreamWriter(rt.redis, rt.keys, id, ctx.attempt, rt.roomStreamMaxLen);
    const startedAt = new Date();
    const startedSeq = await writer.emit('turn_started', { turn, agentId: speaker.id, agentName: speaker.name, model: speaker.model });
    // Messages from the stream (where their seq is allocated) and from MongoDB (in case the stream lost
    // old entries), merged by id: a message posted just before turn_started is in the stream at once,
    // while its document may still be on its way.
    const fromSeq = summary?.coversSeq ?? 0;
    const byId = new Map<string, { seq: number; authorName: string; text: string }>();
    for (const m of await rt.transcripts.messages(id, { fromSeq, beforeSeq: startedSeq })) byId.set(m.id, m);
    for (const m of await readRoomMessages(rt.redis, rt.keys, id, fromSeq, startedSeq)) byId.set(m.id, m);
    const messages = [...byId.values()].sort((a, b) => a.seq - b.seq);
    const timeline: TimelineEntry[] = [
      ...earlier
        .filter((t) => t.status !== 'failed')
        .map((t) => ({ kind: 'turn' as const, seq: t.seq, turn: t.turn, agentId: t.agentId, agentName: t.agentName, text: t.text, status: t.status })),
      ...messages.map((m) => ({ kind: 'human' as const, seq: m.seq, authorName: m.authorName, text: m.text })),
    ].sort((a, b) => a.seq - b.seq);
    const budget = contextBudget(room.policy.contextTokens, speaker.params, rt.defaults);
    const context = assembleContext({
      topic: room.topic,
      speaker,
      participants: roster.speakers.map((s) => s.name),
      turn,
      summary: summary ? { upToTurn: summary.upToTurn, text: summary.text } : null,
      timeline,
      longTermMemory: rt.longTermMemory ? await rt.longTermMemory(room, speaker, timeline.at(-1)?.text ?? '') : [],
      budget,
    });

    // ── generate ──
    const options = { ...speaker.params, num_predict: speaker.params.num_predict ?? rt.defaults.numPredict };
    const run = newChatRun();
    let last: ChatChunk | undefined;
    let status: TurnStatus = 'completed';
    let failure: JobError | undefined;
    let thrown: unknown;
    // A heartbeat on the job record while the model thinks: the first token can take long on a busy host.
    const heartbeat = setInterval(() => ctx.progress({ tokens: run.emitted }), 5_000);
    try {
      if (interruptedEarly) throw ctx.signal.reason;
      // The room owner's token budget, as for any chat job; a refusal (BUDGET_EXHAUSTED, not retryable)
      // fails the turn and pauses the room with the reason. A turn is a live performance: never replayed
      // from the response cache, even when its sampling is deterministic.
      last = await streamChat(
        rt.ollama,
        ctx,
        { model: speaker.model, messages: context.messages, options },
        {
          budget: rt.budget,
          promptTokensEstimate: context.stats.estimatedTokens,
          exhausted: "token budget exhausted: the room owner's budget has no tokens left for this turn",
          call: { cache: 'bypass' },
          onPiece: (piece) => writer.tokens(turn, speaker.id, piece),
          // Progress doubles as a heartbeat on the job record (the runtime writes it at most once a second).
          progressAt: (n) => n === 1 || n % 8 === 0,
        },
        run,
      );
    } catch (err) {
      thrown = err;
      if (isCancel(ctx)) status = 'interrupted';
      else if (ctx.abortReason === SHUTDOWN || ctx.abortReason === SUPERSEDED) {
        // Handed back to the queue, or another attempt owns the turn: that attempt restarts it (a new turn_started tells viewers).
        await writer.flush();
        throw err;
      } else {
        failure = toJobError(err);
        // The runtime decides whether this job runs again; only a final failure fails the turn and pauses the room.
        if (ctx.willRetry(failure)) {
          await writer.flush();
          throw err;
        }
        status = 'failed';
      }
    } finally {
      clearInterval(heartbeat);
    }
    const { text, emitted, firstTokenMs, t0 } = run;
    const usage: Usage = last
      ? {
          model: speaker.model,
          promptTokens: last.prompt_eval_count ?? context.stats.estimatedTokens,
          completionTokens: last.eval_count ?? emitted,
          estimated: last.eval_count === undefined,
        }
      : { model: speaker.model, promptTokens: context.stats.estimatedTokens, completionTokens: emitted, estimated: true };

    // ── commit ──
    await rt.transcripts.putTurn({
      discussionId: id,
      turn,
      agentId: speaker.id,
      agentName: speaker.name,
      model: speaker.model,
      text,
      status,
      usage,
      timings: { startedAt, firstTokenMs, totalMs: performance.now() - t0 },
      startedSeq,
      attempt: ctx.attempt,
      jobId: ctx.jobId,
      context: context.stats,
      prompt: context.messages,
      copiedFrom: null,
      pickedBy: pick.pickedBy,
      moderatorUsage: pick.usage,
      error: failure ?? null,
      createdAt: new Date(),
    });
    await rt.memory.push(id, { turn, seq: startedSeq, agentId: speaker.id, agentName: speaker.name, text, status });

    if (status === 'failed') {
      await writer.emit('turn_finished', { turn, agentId: speaker.id, status, usage, error: failure });
      await pauseForFailure(rt, { id, turn, jobId: ctx.jobId, reason: `turn ${turn} (${speaker.name}) failed: ${failure!.code}: ${failure!.message}` });
      throw thrown;
    }
    const marker = room.policy.consensusMarker;
    const consensus =
      status === 'completed' && marker && text.toLowerCase().includes(marker.toLowerCase()) ? `${speaker.name} signalled consensus ("${marker}")` : undefined;
    const spent = turnTokens({ usage, moderatorUsage: pick.usage });
    const outcome = await commitTurn(rt, { id, turn, jobId: ctx.jobId, tokens: spent, consensus });
    await writer.emit('turn_finished', { turn, agentId: speaker.id, status, usage });
    if (outcome.finished) await announceStatus(rt, id, 'finished', outcome.finished);
    await release(rt, outcome.next);
    if (outcome.committed && rt.feedTranscript) await rt.feedTranscript(room, { turn, agentId: speaker.id, agentName: speaker.name, text });
    if (outcome.committed && !outcome.finished) {
      const self: TimelineEntry = { kind: 'turn', seq: startedSeq, turn, agentId: speaker.id, agentName: speaker.name, text, status };
      await maybeSummarize(rt, ctx, room, speaker, [...timeline, self], budget, context.fixedTokens).catch((err: unknown) =>
        ctx.log.warn({ err }, 'could not schedule a summary'),
      );
    }
    if (status === 'interrupted') throw thrown;
    return { discussionId: id, turn, outcome: 'spoke', agentId: speaker.id, text, usage } satisfies DiscussionTurnResult;
  };
}

async function chooseSpeaker(
  rt: DiscussionRuntime,
  ctx: HandlerContext<unknown>,
  room: DiscussionRow,
  speakers: RoomMember[],
  moderator: RoomMember | null,
  turn: number,
  earlier: MemoryTurn[],
): Promise<Pick> {
  if (room.policy.turns.kind !== 'moderator' || !moderator)
    return { agentId: roundRobin(speakers, turn).id, pickedBy: 'round_robin', consensus: false, usage: null };
  const recent: TimelineEntry[] = earlier
    .filter((t) => t.status !== 'failed')
    .slice(-6)
    .map((t) => ({ kind: 'turn', seq: t.seq, turn: t.turn, agentId: t.agentId, agentName: t.agentName, text: t.text.slice(0, 400), status: t.status }));
  return askModerator({
    ollama: rt.ollama,
    log: ctx.log,
    moderator,
    speakers,
    topic: room.topic,
    turn,
    recent,
    lastSpeakerId: earlier.at(-1)?.agentId,
    signal: ctx.signal,
  });
}

/**
 * When the unsummarised transcript (plus persona, notes and summary) would no
 * longer fit the budget, fold its older part into the rolling summary. The
 * job id is derived from (room, upToTurn), so asking twice is harmless.
 */
async function maybeSummarize(
  rt: DiscussionRuntime,
  ctx: HandlerContext<unknown>,
  room: DiscussionRow,
  speaker: RoomMember,
  timeline: TimelineEntry[],
  budget: number,
  fixed: number,
): Promise<void> {
  // `fixed`: what every prompt carries besides the timeline (the system message, the notes and summary messages, the cue).
  const upTo = summaryCut(timeline, speaker.id, budget, fixed);
  if (upTo === undefined) return;
  const job = await recordSummaryJob(rt.jobs, rt.db, room, upTo, Math.max(32, Math.floor(budget / 3)));
  if (!job.created) return;
  await rt.jobs.handOff(job);
  ctx.log.info({ discussionId: room.id, upToTurn: upTo, estimate: estimateTokens(timeline.map((e) => e.text).join('\n')), budget }, 'summary scheduled');
}
