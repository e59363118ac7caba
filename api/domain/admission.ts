/**
 * Submit-time policy, run again on every retry: for every kind, the
 * priority class the role may use, the kind's input size bound
 * (PARLEY_JOB_LIMITS) and, for system.ping, the role's longest hold; for
 * metered jobs (llm.chat, embed.batch) the role's caps, then the owner's
 * token budget. Wired as `JobDeps.admit`, which submitJob and retryJob call
 * after validation and before anything is recorded or re-queued, so a
 * refusal leaves nothing behind. A retry admits while it holds its record's
 * row lock (JobLifecycle retry), so racing retries of one job never admit
 * side by side: one does, the others are refused before they reserve.
 *
 * Priority: a job that asks for a class the role lacks is 422 LIMIT_EXCEEDED
 * (`priorities`); one that asks for none gets its kind's default lowered to
 * the best class the role has. A retry keeps the recorded class if the role
 * still has it, else the best one below it (the sweeper's aging may have
 * raised it).
 *
 * A model the client names must be installed on some Ollama host (400
 * VALIDATION_FAILED), compared in canonical form across aliases and hosts
 * (model-policy.ts). Caps answer 422 LIMIT_EXCEEDED naming the cap and its
 * limit, checked in this order: model, keep_alive, num_predict, num_ctx,
 * prompt size; then a budget that cannot hold the reservation answers 429
 * BUDGET_EXHAUSTED with Retry-After (seconds until the period resets); then
 * the insert checks the concurrent jobs (below).
 *
 * An admitted llm.chat gets its num_predict pinned in its input (the role's
 * bound on the platform default when it named none), so the record shows
 * the bound the job ran with and the reservation matches it.
 *
 * The concurrency cap is checked by the job's insert itself (`cap`), which
 * counts under the owner's Postgres advisory lock in the same statement and
 * records nothing over the cap, so of any number of racing submits exactly as
 * many are accepted as there are free slots, with one Postgres statement per
 * metered submit. A retry is capped the same way, by the statement that
 * re-queues its record (the job's own row, failed or cancelled, is not in
 * flight, so it is not counted). It is the last check: a job over it had its
 * budget reserved, and the submit or retry releases that reservation as it
 * answers the 422 (`reserved` says whether there is one of its own).
 */
import { estimatePromptTokens, type BudgetRefusal, type Budgets } from '../../platform/usage/index.ts';
import type { Config, RoleCap } from '../../platform/config.ts';
import type { AcceptSpec } from '../../platform/jobs/index.ts';
import { jobs, PriorityClass, type EmbedBatchInput, type KnowledgeExtractInput, type LlmChatInput, type SystemPingInput } from '../../shared/index.ts';
import { llmPassReservation } from '../../platform/knowledge/index.ts';
import type { Actor, Role } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { capExceeded as exceeded, checkKeepAlive, checkModel, type ModelView } from './model-policy.ts';

export interface AdmissionDeps {
  config: Pick<Config, 'roleCaps' | 'ollama' | 'jobLimits' | 'knowledge'>;
  budgets: Budgets;
  /** What the Ollama hosts have installed: the status poller, which sees every host. */
  models: ModelView;
}

/** Whose caps and budget apply: the job's owner (on a retry by an operator, the owner, not the operator). */
export type Subject = Pick<Actor, 'userId' | 'role'>;

export interface AdmissionRequest {
  subject: Subject;
  kind: string;
  input: unknown;
  /** The id the job has or will have: a budget reservation is made under it. */
  jobId: string;
  /** The class asked for (submit) or recorded (retry); undefined: the kind's default. */
  priority?: PriorityClass;
  /** A retry re-runs a recorded job: its class is lowered, never refused, and its row already exists. */
  retry?: boolean;
}

export interface Admitted {
  /** The input to record (defaults pinned, e.g. the role's num_predict bound). */
  input: unknown;
  priority: PriorityClass;
  /** The owner's concurrency cap for the job's insert (submit) or re-queue (retry) to enforce; see JobLifecycle accept and retry. */
  cap?: AcceptSpec['cap'];
  /**
   * True when this admission reserved budget under the job's id: a caller that then does not accept the
   * job releases it. False when it reserved nothing, or the id already held a reservation (the previous
   * run's, not settled yet), which is not this caller's to release.
   */
  reserved: boolean;
}

const meteredKinds = Object.values(jobs)
  .filter((d) => d.metered)
  .map((d) => d.kind);
const order = PriorityClass.options;

/** The best class `allowed` holds at or below `wanted` (interactive > normal > batch); else the best it holds at all. */
export function lowerTo(wanted: PriorityClass, allowed: readonly PriorityClass[]): PriorityClass {
  return order.slice(order.indexOf(wanted)).find((p) => allowed.includes(p)) ?? order.find((p) => allowed.includes(p)) ?? 'batch';
}

/**
 * 429 BUDGET_EXHAUSTED for a refused reservation, with Retry-After (seconds until the period
 * resets). `needs` says what the reservation was made of.
 */
export function budgetExhausted(f: BudgetRefusal, needs = 'prompt estimate + num_predict'): AppError {
  const retryAfter = Math.max(1, Math.ceil((f.resetsAt.getTime() - Date.now()) / 1000));
  return new AppError('BUDGET_EXHAUSTED', {
    detail: `The ${f.source} budget of ${f.limitTokens} tokens per ${f.period} cannot hold this job: ${f.usedTokens} used or reserved, this job needs up to ${f.requestedTokens} (${needs}). It resets at ${f.resetsAt.toISOString()}.`,
    headers: { 'Retry-After': String(retryAfter) },
    extra: {
      period: f.period,
      source: f.source,
      limit: f.limitTokens,
      used: f.usedTokens,
      requested: f.requestedTokens,
      resetsAt: f.resetsAt.toISOString(),
    },
  });
}

/**
 * Reserves what a knowledge source's LLM pass may spend (platform/knowledge llmPassReservation)
 * against its owner's budget, for the job `jobId`; 429 BUDGET_EXHAUSTED when the budget cannot hold
 * it. Used where a source is added and again at a retry of its job.
 */
export async function reserveLlmPass(
  budgets: Pick<Budgets, 'reserve'>,
  owner: { id: string; role: string },
  jobId: string,
  source: KnowledgeExtractInput['source'],
  maxTokens: number,
): Promise<boolean> {
  const r = await budgets.reserve({ jobId, owner, tokens: llmPassReservation(source, maxTokens) });
  if (!r.ok) throw budgetExhausted(r.refusal, "the LLM pass's estimate: per message, its prompt and the longest answer allowed");
  return r.created;
}

export function createAdmission(deps: AdmissionDeps) {
  const { config } = deps;

  const overCap = (subject: Subject, cap: RoleCap, n: number) =>
    exceeded('maxConcurrentJobs', cap.maxConcurrentJobs, subject.role, `${n} metered jobs are already queued or running`, 'kind');

  /** True when this call made the reservation (see Admitted.reserved). */
  async function reserve(subject: Subject, jobId: string, tokens: number): Promise<boolean> {
    const r = await deps.budgets.reserve({ jobId, owner: { id: subject.userId, role: subject.role }, tokens });
    if (!r.ok) throw budgetExhausted(r.refusal);
    return r.created;
  }

  function priorityOf(req: AdmissionRequest, cap: RoleCap): PriorityClass {
    const def = jobs[req.kind as keyof typeof jobs];
    const wanted = req.priority ?? def?.defaults.priority ?? 'normal';
    if (cap.priorities.includes(wanted)) return wanted;
    if (req.priority === undefined || req.retry) return lowerTo(wanted, cap.priorities);
    throw exceeded('priorities', cap.priorities.join(', '), req.subject.role, `Priority "${wanted}" is not allowed`, 'priority');
  }

  function checkInputSize(req: AdmissionRequest): void {
    const limit = config.jobLimits.of(req.kind).inputBytes;
    const bytes = Buffer.byteLength(JSON.stringify(req.input ?? null));
    if (bytes > limit) {
      throw new AppError('LIMIT_EXCEEDED', {
        detail: `The input of ${req.kind} is ${bytes} bytes of JSON: above the bound of ${limit} bytes for this kind`,
        errors: [{ path: 'input', message: `at most ${limit} bytes of JSON` }],
        extra: { cap: 'inputBytes', limit },
      });
    }
  }

  return async function admit(req: AdmissionRequest): Promise<Admitted> {
    const { subject, kind, input, jobId } = req;
    const cap = config.roleCaps[subject.role as Role];
    // Jobs the platform owns (its system account has no role caps) are the platform's business.
    if (!cap) return { input, priority: req.priority ?? jobs[kind as keyof typeof jobs]?.defaults.priority ?? 'normal', reserved: false };
    const priority = priorityOf(req, cap);
    checkInputSize(req);
    if (kind === 'system.ping') {
      const hold = (input as SystemPingInput).holdMs ?? 0;
      if (hold > cap.maxPingHoldMs) throw exceeded('maxPingHoldMs', cap.maxPingHoldMs, subject.role, `holdMs ${hold}`, 'input.holdMs');
      return { input, priority, reserved: false };
    }
    if (kind === 'knowledge.extract') {
      // Only a retry comes through here (POST /v1/knowledge/sources reserves itself): its LLM pass runs again.
      const x = input as KnowledgeExtractInput;
      const reserved = x.llmPass
        ? await reserveLlmPass(deps.budgets, { id: subject.userId, role: subject.role }, jobId, x.source, config.knowledge.llmMaxTokens)
        : false;
      return { input, priority, reserved };
    }
    if (kind !== 'llm.chat' && kind !== 'embed.batch') return { input, priority, reserved: false };
    // A retry counts like a submit: its re-queue is capped (the record it re-runs is not in flight, so not counted).
    const capped: Admitted['cap'] = { kinds: meteredKinds, limit: cap.maxConcurrentJobs, refuse: (n) => overCap(subject, cap, n) };
    if (kind === 'llm.chat') {
      const chat = input as LlmChatInput;
      await checkModel(deps.models, subject.role, cap, chat.model ?? config.ollama.chatModel, { named: chat.model !== undefined, path: 'input.model' });
      checkKeepAlive(subject.role, cap, chat.keep_alive, 'input.keep_alive');
      const asked = chat.options?.num_predict;
      if (asked !== undefined && asked > cap.maxNumPredict)
        throw exceeded('maxNumPredict', cap.maxNumPredict, subject.role, `num_predict ${asked}`, 'input.options.num_predict');
      const numCtx = chat.options?.num_ctx;
      if (numCtx !== undefined && numCtx > cap.maxNumCtx)
        throw exceeded('maxNumCtx', cap.maxNumCtx, subject.role, `num_ctx ${numCtx}`, 'input.options.num_ctx');
      const chars = chat.messages.reduce((n, m) => n + m.content.length, 0);
      if (chars > cap.maxPromptChars) throw exceeded('maxPromptChars', cap.maxPromptChars, subject.role, `A prompt of ${chars} characters`, 'input.messages');
      const numPredict = asked ?? Math.min(config.ollama.defaultNumPredict, cap.maxNumPredict);
      const reserved = await reserve(subject, jobId, estimatePromptTokens(chars) + numPredict);
      return { input: { ...chat, options: { ...chat.options, num_predict: numPredict } }, priority, cap: capped, reserved };
    }
    const embed = input as EmbedBatchInput;
    await checkModel(deps.models, subject.role, cap, embed.model ?? config.ollama.embedModel, { named: embed.model !== undefined, path: 'input.model' });
    const chars = embed.texts.reduce((n, t) => n + t.length, 0);
    if (chars > cap.maxPromptChars) throw exceeded('maxPromptChars', cap.maxPromptChars, subject.role, `Texts of ${chars} characters`, 'input.texts');
    const reserved = await reserve(subject, jobId, estimatePromptTokens(chars));
    return { input, priority, cap: capped, reserved };
  };
}

export type Admit = ReturnType<typeof createAdmission>;
