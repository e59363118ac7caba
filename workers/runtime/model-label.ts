/**
 * Bounded `model` label values. A job names its model in its input, which a
 * user writes: used as a label as is, every made-up name would become a new
 * time series. Only the configured models and models some live Ollama host
 * has installed (as the status poller last saw them) label a series; any
 * other name is counted under "other".
 */
import { normalizeModel } from '../../platform/ollama/status.ts';

export const OTHER_MODEL = 'other';

export function modelLabeller(opts: { configured: readonly string[]; isInstalled: (model: string) => boolean }): (name: string) => string {
  const configured = new Set(opts.configured.map(normalizeModel));
  return (name) => {
    if (!name) return '';
    const model = normalizeModel(name);
    return configured.has(model) || opts.isInstalled(model) ? model : OTHER_MODEL;
  };
}
