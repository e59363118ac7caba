/** Model status: what every Ollama host has installed and loaded, from the status poller. */
import { ModelStatusReport } from '../../shared/index.ts';
import type { OllamaStatus } from '../../platform/ollama/index.ts';
import { route, type Route } from '../http/route.ts';

export interface ModelStatusDeps {
  status: OllamaStatus;
  /** Always reported, even when no host has them (the configured chat and embedding models). */
  models: string[];
}

export function modelStatusRoutes(deps: ModelStatusDeps): Route[] {
  return [
    route({
      method: 'get',
      path: '/v1/models/status',
      operationId: 'getModelStatus',
      tags: ['models'],
      access: 'models:read',
      summary: 'Per-host and per-model availability: installed (/api/tags), loaded with memory and expiry (/api/ps), host up or down. As of the last poll.',
      responses: { 200: { description: 'The status report', schema: ModelStatusReport } },
      async handle() {
        await deps.status.ready();
        return { status: 200, body: deps.status.report(deps.models), headers: { 'Cache-Control': 'no-store' } };
      },
    }),
  ];
}
