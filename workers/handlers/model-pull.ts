/**
 * model.pull: the model into every Ollama host, in parallel, through the one
 * client (`ollama.models.pull`, Ollama's /api/pull streamed). Progress is the
 * bytes summed over every host's layers.
 *
 * Bounded per host: no progress line for `idleTimeoutMs`, or `timeoutMs` in
 * all, ends that host's pull. The job completes only when every host has the
 * model; otherwise it fails naming each host's outcome (`details.hosts`),
 * with the code of the most deterministic failure, since that decides the
 * retry: a model the registry does not have (or a name it refuses) is
 * UPSTREAM_REJECTED, any other failure Ollama reports HANDLER_FAILED, a
 * timeout UPSTREAM_TIMEOUT, and a registry or host that cannot be reached
 * UPSTREAM_UNAVAILABLE. A retry pulls again on every host; one that already
 * has the model answers at once.
 */
import { JobFailure } from '../../platform/jobs/index.ts';
import type { ManageFault, OllamaClient } from '../../platform/ollama/index.ts';
import type { JobErrorCode, modelPull, ModelPullProgress } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';

export interface ModelPullDeps {
  ollama: Pick<OllamaClient, 'models' | 'status'>;
  timeoutMs: number;
  idleTimeoutMs: number;
}

const label: Record<ManageFault, string> = {
  'registry-unreachable': 'registry unreachable',
  'not-found': 'model not found in the registry',
  invalid: 'pull refused',
  failed: 'pull failed',
  timeout: 'pull timed out',
  unreachable: 'Ollama host unreachable',
};

/** The most deterministic failure decides the code (and so whether the job is retried). */
function codeOf(faults: ManageFault[]): JobErrorCode {
  if (faults.some((f) => f === 'not-found' || f === 'invalid')) return 'UPSTREAM_REJECTED';
  if (faults.includes('failed')) return 'HANDLER_FAILED';
  if (faults.includes('timeout')) return 'UPSTREAM_TIMEOUT';
  return 'UPSTREAM_UNAVAILABLE';
}

export function modelPullHandler(deps: ModelPullDeps): Handler<typeof modelPull> {
  return async (input, ctx) => {
    const t0 = performance.now();
    const { models } = deps.ollama;
    // Per host and layer, so the totals stay right when Ollama reports layers in turn.
    const layers = new Map<string, { total: number; completed: number }>();
    let status = 'starting';
    let lastReport = 0;
    const report = (force: boolean) => {
      const now = performance.now();
      if (!force && now - lastReport < 250) return;
      lastReport = now;
      let totalBytes = 0;
      let completedBytes = 0;
      for (const l of layers.values()) {
        totalBytes += l.total;
        completedBytes += l.completed;
      }
      const percent = totalBytes > 0 ? Math.min(100, Math.round((completedBytes / totalBytes) * 1000) / 10) : 0;
      const p: ModelPullProgress = { status, completedBytes, totalBytes, percent };
      ctx.progress(p);
    };

    try {
      const outcomes = await Promise.all(
        models.hosts.map((host) =>
          models.pull(host, input.model, {
            insecure: input.insecure,
            signal: ctx.signal,
            timeoutMs: deps.timeoutMs,
            idleTimeoutMs: deps.idleTimeoutMs,
            onProgress: (h, line) => {
              const changed = line.status !== undefined && line.status !== status;
              if (line.status) status = line.status;
              if (line.digest && typeof line.total === 'number') layers.set(`${h} ${line.digest}`, { total: line.total, completed: line.completed ?? 0 });
              report(changed);
            },
          }),
        ),
      );
      const failed = outcomes.flatMap((o) => (o.ok ? [] : [o]));
      if (failed.length) {
        const many = models.hosts.length > 1;
        const parts = failed.map((f) => `${many ? `${f.host}: ` : ''}${label[f.fault]}: ${f.message}`);
        const pulled = outcomes.filter((o) => o.ok).map((o) => o.host);
        throw new JobFailure(codeOf(failed.map((f) => f.fault)), `${parts.join('; ')}${pulled.length ? ` (pulled on ${pulled.join(', ')})` : ''}`, {
          details: { hosts: outcomes.map((o) => (o.ok ? { host: o.host, outcome: 'success' } : { host: o.host, outcome: o.fault, message: o.message })) },
        });
      }
      status = 'success';
      report(true);
      const totalBytes = [...layers.values()].reduce((n, l) => n + l.total, 0);
      return {
        model: input.model,
        status,
        totalBytes,
        durationMs: Math.round(performance.now() - t0),
        hosts: outcomes.map((o) => ({ host: o.host, status: o.ok ? o.value.status : 'failed' })),
      };
    } finally {
      // Whatever arrived is installed now: admission and routing should see it at once.
      await deps.ollama.status.refresh().catch(() => {});
    }
  };
}
