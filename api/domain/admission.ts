/**
 * Submit-time policy for metered jobs (llm.chat, embed.batch): the role's
 * caps, then the owner's token budget. Wired as `JobDeps.admit`, which
 * submitJob calls after validation and before anything is recorded, so a
 * refusal leaves nothing behind.
 *
 * A model the client names must be installed on some Ollama host (400
 * VALIDATION_FAILED), compared in canonical form across aliases and hosts
 * (model-policy.ts). Caps answer 422 LIMIT_EXCEEDED naming the cap and its
 * limit, checked in this order: model, keep_alive, num_predict, num_ctx,
 * prompt size, concurrent jobs.
 * A budget that cannot hold the reservation answers 429 BUDGET_EXHAUSTED
 * with Retry-After (seconds until the period resets).
 *
 * An admitted llm.chat gets its num_predict pinned in its input (the role's
 * bound on the platform default when it named none), so the record shows
 * the bound the job ran with and the reservation matches it.
 *
 * The concurrency cap is checked twice: before the job is recorded (a cheap
 * refusal), and by `confirm` after its row exists, counting it. Confirmations
 * of one user's jobs take turns under a Postgres advisory lock, and a refused
 * job's row is deleted before the lock is let go, so of any number of racing
 * submits exactly as many are accepted as there are free slots.
 */
import { estimatePromptTokens, type Budgets } from '../../platform/usage/index.ts';
import type { Config, RoleCap } from '../../platform/config.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import { jobs, type EmbedBatchInput, type LlmChatInput } from '../../shared/index.ts';
import type { Actor } from '../auth/permissions.ts';
import { AppError } from '../http/app-error.ts';
import { capExceeded as exceeded, checkKeepAlive, checkModel, type ModelView } from './model-policy.ts';

export interface AdmissionDeps {
  config: Pick<Config, 'roleCaps' | 'ollama'>;
  /** In-flight counts and the per-owner lock come from the job lifecycle. */
  jobs: Pick<JobLifecycle, 'inFlight' | 'underOwnerLock'>;
  budgets: Budgets;
  /** What the Ollama hosts have installed: the status poller, which sees every host. */
  models: ModelView;
}

const meteredKinds = Object.values(jobs).filter((d) => d.metered).map((d) => d.kind);

export function createAdmission(deps: AdmissionDeps) {
  const { config } = deps;

  async function checkConcurrency(actor: Actor, cap: RoleCap): Promise<void> {
    const n = await deps.jobs.inFlight(actor.userId, meteredKinds);
    if (n >= cap.maxConcurrentJobs) {
      throw exceeded('maxConcurrentJobs', cap.maxConcurrentJobs, actor.role, `${n} metered jobs are already queued or running`, 'kind');
    }
  }

  /** After the job's row is recorded: refuses it (and deletes the row) if it made the owner's in-flight metered jobs exceed the cap. */
  function confirmer(actor: Actor, cap: RoleCap, jobId: string) {
    return async () => {
      const over = await deps.jobs.underOwnerLock(actor.userId, async (tx) => {
        const n = await tx.inFlight(meteredKinds);
        if (n <= cap.maxConcurrentJobs) return 0;
        await tx.remove(jobId);
        return n;
      });
      if (over) throw exceeded('maxConcurrentJobs', cap.maxConcurrentJobs, actor.role, `${over - 1} metered jobs are already queued or running`, 'kind');
    };
  }

  async function reserve(actor: Actor, jobId: string, tokens: number): Promise<void> {
    const r = await deps.budgets.reserve({ jobId, owner: { id: actor.userId, role: actor.role }, tokens });
    if (r.ok) return;
    const { refusal: f } = r;
    const retryAfter = Math.max(1, Math.ceil((f.resetsAt.getTime() - Date.now()) / 1000));
    throw new AppError('BUDGET_EXHAUSTED', {
      detail: `The ${f.source} budget of ${f.limitTokens} tokens per ${f.period} cannot hold this job: ${f.usedTokens} used or reserved, this job needs up to ${f.requestedTokens} (prompt estimate + num_predict). It resets at ${f.resetsAt.toISOString()}.`,
      headers: { 'Retry-After': String(retryAfter) },
      extra: { period: f.period, source: f.source, limit: String(f.limitTokens), used: String(f.usedTokens), requested: String(f.requestedTokens), resetsAt: f.resetsAt.toISOString() },
    });
  }

  return async function admit(actor: Actor, kind: string, input: unknown, jobId: string): Promise<{ input: unknown; confirm?: () => Promise<void> } | void> {
    if (kind !== 'llm.chat' && kind !== 'embed.batch') return;
    const cap = config.roleCaps[actor.role];
    if (kind === 'llm.chat') {
      const chat = input as LlmChatInput;
      await checkModel(deps.models, actor.role, cap, chat.model ?? config.ollama.chatModel, { named: chat.model !== undefined, path: 'input.model' });
      checkKeepAlive(actor.role, cap, chat.keep_alive, 'input.keep_alive');
      const asked = chat.options?.num_predict;
      if (asked !== undefined && asked > cap.maxNumPredict) throw exceeded('maxNumPredict', cap.maxNumPredict, actor.role, `num_predict ${asked}`, 'input.options.num_predict');
      const numCtx = chat.options?.num_ctx;
      if (numCtx !== undefined && numCtx > cap.maxNumCtx) throw exceeded('maxNumCtx', cap.maxNumCtx, actor.role, `num_ctx ${numCtx}`, 'input.options.num_ctx');
      const chars = chat.messages.reduce((n, m) => n + m.content.length, 0);
      if (chars > cap.maxPromptChars) throw exceeded('maxPromptChars', cap.maxPromptChars, actor.role, `A prompt of ${chars} characters`, 'input.messages');
      await checkConcurrency(actor, cap);
      const numPredict = asked ?? Math.min(config.ollama.defaultNumPredict, cap.maxNumPredict);
      await reserve(actor, jobId, estimatePromptTokens(chars) + numPredict);
      return { input: { ...chat, options: { ...chat.options, num_predict: numPredict } }, confirm: confirmer(actor, cap, jobId) };
    }
    const embed = input as EmbedBatchInput;
    await checkModel(deps.models, actor.role, cap, embed.model ?? config.ollama.embedModel, { named: embed.model !== undefined, path: 'input.model' });
    const chars = embed.texts.reduce((n, t) => n + t.length, 0);
    if (chars > cap.maxPromptChars) throw exceeded('maxPromptChars', cap.maxPromptChars, actor.role, `Texts of ${chars} characters`, 'input.texts');
    await checkConcurrency(actor, cap);
    await reserve(actor, jobId, estimatePromptTokens(chars));
    return { input, confirm: confirmer(actor, cap, jobId) };
  };
}
