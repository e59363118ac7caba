/**
 * model.pull: Ollama's /api/pull with `stream: true`. Ollama answers with
 * NDJSON lines `{ status, digest?, total?, completed? }` per layer, ending in
 * `{ status: "success" }`, or a line `{ error }` (HTTP 200 already sent).
 *
 * Bounded twice: no line for `idleTimeoutMs`, or `timeoutMs` in all, ends the
 * job with UPSTREAM_TIMEOUT. A registry Ollama cannot reach is
 * UPSTREAM_UNAVAILABLE ("registry unreachable: ..."), an unknown model is
 * UPSTREAM_REJECTED; neither hangs.
 */
import { JobFailure } from '../../platform/jobs/index.ts';
import type { modelPull, ModelPullProgress } from '../../shared/index.ts';
import type { Handler } from '../runtime/handler.ts';

export interface ModelPullDeps {
  host: string;
  timeoutMs: number;
  idleTimeoutMs: number;
}

interface PullLine {
  status?: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

// Go's net errors as Ollama relays them: DNS, refused, unreachable, TLS and timeouts on the way to the registry.
const unreachable = /dial tcp|no such host|lookup |connection refused|network is unreachable|i\/o timeout|tls: |certificate|context deadline exceeded|connection reset/i;
const unknownModel = /file does not exist|manifest unknown|not found|pull access denied/i;

function classify(message: string): JobFailure {
  if (unreachable.test(message)) return new JobFailure('UPSTREAM_UNAVAILABLE', `registry unreachable: ${message}`);
  if (unknownModel.test(message)) return new JobFailure('UPSTREAM_REJECTED', `model not found in the registry: ${message}`);
  return new JobFailure('HANDLER_FAILED', `pull failed: ${message}`);
}

export function modelPullHandler(deps: ModelPullDeps): Handler<typeof modelPull> {
  return async (input, ctx) => {
    const t0 = performance.now();
    const idle = new AbortController();
    const overall = AbortSignal.timeout(deps.timeoutMs);
    // Aborted on the way out, whatever the outcome, so Ollama stops downloading when we stop listening.
    const done = new AbortController();
    const signal = AbortSignal.any([ctx.signal, overall, idle.signal, done.signal]);
    let idleTimer = setTimeout(() => idle.abort(), deps.idleTimeoutMs);
    const arm = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => idle.abort(), deps.idleTimeoutMs);
    };
    const timedOut = (cause: unknown): unknown => {
      if (ctx.signal.aborted) return ctx.signal.reason;
      if (overall.aborted) return new JobFailure('UPSTREAM_TIMEOUT', `pull of ${input.model} took longer than ${deps.timeoutMs} ms`, { cause });
      if (idle.signal.aborted) return new JobFailure('UPSTREAM_TIMEOUT', `pull of ${input.model}: no progress from Ollama for ${deps.idleTimeoutMs} ms`, { cause });
      return new JobFailure('UPSTREAM_UNAVAILABLE', `ollama /api/pull: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    };

    // Per layer, so the totals stay right when Ollama reports layers in turn.
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
      let res: Response;
      try {
        res = await fetch(`${deps.host}/api/pull`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: input.model, insecure: input.insecure, stream: true }),
          signal,
        });
      } catch (cause) {
        throw timedOut(cause);
      }
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => '');
        let message = text;
        try {
          message = (JSON.parse(text) as { error?: string }).error ?? text;
        } catch {
          /* not JSON */
        }
        if (res.status >= 500) throw classify(message || `HTTP ${res.status}`);
        throw new JobFailure('UPSTREAM_REJECTED', `ollama /api/pull: HTTP ${res.status} ${message}`.trim());
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (cause) {
          throw timedOut(cause);
        }
        if (chunk.done) break;
        arm();
        buf += decoder.decode(chunk.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const raw = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!raw) continue;
          const line = JSON.parse(raw) as PullLine;
          if (line.error) throw classify(line.error);
          const changed = line.status !== undefined && line.status !== status;
          if (line.status) status = line.status;
          if (line.digest && typeof line.total === 'number') layers.set(line.digest, { total: line.total, completed: line.completed ?? 0 });
          if (status === 'success') {
            report(true);
            const totalBytes = [...layers.values()].reduce((n, l) => n + l.total, 0);
            return { model: input.model, status, totalBytes, durationMs: Math.round(performance.now() - t0) };
          }
          report(changed);
        }
      }
      throw new JobFailure('UPSTREAM_UNAVAILABLE', `ollama /api/pull: stream ended before "success" (last status "${status}")`);
    } finally {
      clearTimeout(idleTimer);
      done.abort();
    }
  };
}
