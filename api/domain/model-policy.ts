/**
 * Who may use which model, and how: the checks job admission, agents and
 * model loads share. Model names are compared in their one canonical form
 * (shared/model-name.ts), so `x`, `x:latest`, `library/x`, the same with the
 * default registry host in front, and any mix of case are one model: an
 * alias cannot get past an allow-list. What is installed comes from the
 * status poller (platform/ollama/status.ts), which sees every host, so a
 * model installed only on a second host is known too.
 */
import type { RoleCap } from '../../platform/config.ts';
import { canonicalModelName, keepAliveSeconds, type KeepAlive } from '../../shared/index.ts';
import { AppError } from './errors.ts';

/** What the Ollama hosts have installed: the status poller's view (`OllamaStatus`). */
export interface ModelView {
  /** Resolves once the first poll has finished. */
  ready(): Promise<void>;
  /** Resolves once a poll that started at or after `t` (ms since the epoch) has finished. */
  freshSince(t: number): Promise<void>;
  /** Installed on some host; `undefined` when no host has answered yet. */
  isKnown(model: string): boolean | undefined;
}

/**
 * 422 LIMIT_EXCEEDED naming the cap and its limit (the problem body's `cap` and `limit`): a number for a
 * numeric cap, a comma-separated list for a list of allowed values (models, priorities).
 */
export function capExceeded(cap: keyof RoleCap, limit: number | string, role: string, detail: string, path: string): AppError {
  return new AppError('LIMIT_EXCEEDED', {
    detail: `${detail}: above the ${role} cap ${cap} = ${limit}`,
    errors: [{ path, message: `the ${role} cap ${cap} is ${limit}` }],
    extra: { cap, limit },
  });
}

/**
 * A model a request uses. When the client `named` it, it must be installed
 * on some Ollama host (400 VALIDATION_FAILED otherwise; skipped only while no
 * host has ever answered); a configured default is the platform's business,
 * not the client's mistake. Then it must be on the role's allow-list (422).
 */
export async function checkModel(view: ModelView, role: string, cap: RoleCap, model: string, opts: { named: boolean; path: string }): Promise<void> {
  const wanted = canonicalModelName(model);
  if (opts.named) {
    const asked = Date.now();
    await view.ready();
    let known = view.isKnown(wanted);
    if (known !== true) {
      // Maybe created a moment ago, outside Parley: look again with a poll newer than the request.
      // Concurrent misses share one poll, so a flood of bad names costs Ollama one poll at a time.
      await view.freshSince(asked);
      known = view.isKnown(wanted);
    }
    if (known === false) {
      throw new AppError('VALIDATION_FAILED', {
        detail: `"${model}" is not installed on any Ollama host (GET /v1/models lists the installed models)`,
        errors: [{ path: opts.path, message: 'not an installed model' }],
      });
    }
  }
  if (cap.models === '*' || cap.models.some((m) => canonicalModelName(m) === wanted)) return;
  throw capExceeded('models', cap.models.join(', '), role, `Model "${model}" is not allowed`, opts.path);
}

/** `keep_alive` within the role's `maxKeepAliveS` (-1: any, forever included). */
export function checkKeepAlive(role: string, cap: RoleCap, keepAlive: KeepAlive | undefined, path: string): void {
  if (keepAlive === undefined || cap.maxKeepAliveS < 0) return;
  if (keepAliveSeconds(keepAlive) > cap.maxKeepAliveS)
    throw capExceeded('maxKeepAliveS', cap.maxKeepAliveS, role, `keep_alive ${JSON.stringify(keepAlive)}`, path);
}
