/**
 * The OpenAPI 3.1 document, generated from the route declarations and their
 * zod schemas. Never written by hand.
 *
 * Beyond what each route declares, the generator adds what holds for whole
 * classes of routes, so the document cannot forget it:
 * - every operation has its `operationId`;
 * - a route that needs credentials answers 401 (with WWW-Authenticate) and 403;
 * - a route with path parameters answers 404;
 * - every /v1 route is rate limited: 429 with Retry-After, and RateLimit / RateLimit-Policy
 *   (draft-ietf-httpapi-ratelimit-headers) on its answers; and 503 when a backing service is down;
 * - every answer carries X-Request-Id.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { jobs, Problem } from '../shared/index.ts';
import type { HeaderDoc, Route } from './http/route.ts';

/** A streaming endpoint mounted outside the route table (SSE), described for the document. */
export type DocumentedEndpoint = Pick<Route, 'path' | 'method' | 'operationId' | 'summary' | 'tags' | 'responses' | 'requestHeaders'> & { access: string };

const headerSchemas = {
  requestId: { description: 'The request id: also in the problem body and the server log line.', schema: z.string() },
  rateLimit: { description: 'Remaining quota per limiter: `"<limiter>"; r=<remaining>; t=<seconds to reset>` (draft-ietf-httpapi-ratelimit-headers-08).', schema: z.string() },
  rateLimitPolicy: { description: 'The limiters that apply: `"<limiter>"; q=<quota>; w=<window seconds>`.', schema: z.string() },
  retryAfter: { description: 'Seconds to wait before trying again.', schema: z.number().int() },
} satisfies Record<string, HeaderDoc>;

export function buildOpenApi(routes: Route[], extra: DocumentedEndpoint[] = []): object {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key' });
  const seen = new Set<string>();
  for (const r of [...routes, ...extra]) {
    if (seen.has(r.operationId)) throw new Error(`operationId ${r.operationId} is used twice`);
    seen.add(r.operationId);
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const full = r as Partial<Route>;
    const body = full.documentedBody ?? full.body;
    const isPublic = r.access === 'public';
    const limited = r.path.startsWith('/v1/');
    const common = { 'X-Request-Id': headerSchemas.requestId, ...(limited ? { RateLimit: headerSchemas.rateLimit, 'RateLimit-Policy': headerSchemas.rateLimitPolicy } : {}) };
    const responses: Record<string, object> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = {
        description: res.description,
        headers: headersObject({ ...common, ...res.headers }),
        ...(res.schema ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema } } } : res.contentType ? { content: { [res.contentType]: { schema: { type: 'string' } } } } : {}),
      };
    }
    const problem = (description: string, headers: Record<string, HeaderDoc> = {}) => ({
      description,
      headers: headersObject({ ...common, ...headers }),
      content: { 'application/problem+json': { schema: Problem } },
    });
    if (body && !responses[400]) responses[400] = problem('The body, query or path is not valid (VALIDATION_FAILED, MALFORMED_BODY)');
    if (!isPublic) {
      responses[401] ??= problem('No valid credentials (UNAUTHENTICATED)', { 'WWW-Authenticate': { description: 'Bearer, with the reason as error_description', schema: z.string() } });
      responses[403] ??= problem(`The credential lacks the \`${r.access}\` permission (FORBIDDEN)`);
    }
    if (/:\w+/.test(r.path)) responses[404] ??= problem('No such resource, or not visible to you');
    if (limited) {
      responses[429] ??= problem('Rate limited (RATE_LIMITED), or a token budget is spent (BUDGET_EXHAUSTED)', { 'Retry-After': headerSchemas.retryAfter });
      responses[503] ??= problem('A backing service (Redis, Postgres, the queue) is unavailable; nothing was done (SERVICE_UNAVAILABLE)', { 'Retry-After': headerSchemas.retryAfter });
    }
    registry.registerPath({
      method: r.method,
      path,
      operationId: r.operationId,
      summary: r.summary,
      tags: r.tags,
      security: isPublic ? [] : [{ bearer: [] }],
      description: isPublic ? 'No credentials needed.' : `Needs the \`${r.access}\` permission.`,
      request: {
        ...(full.params ? { params: full.params as z.ZodObject } : {}),
        ...(full.query ? { query: full.query as z.ZodObject } : {}),
        ...(r.requestHeaders ? { headers: z.object(Object.fromEntries(Object.entries(r.requestHeaders).map(([name, h]) => [name, (h.schema ?? z.string()).optional().describe(h.description)]))) } : {}),
        ...(body ? { body: { required: true, content: { [full.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: body } } } } : {}),
      },
      responses: responses as never,
    });
  }
  // Each job kind's input and result as named schemas too, for clients that type results by kind.
  for (const def of Object.values(jobs)) {
    // Named components through zod's own JSON Schema output (draft 2020-12, which OpenAPI 3.1 uses):
    // registry.register() would need zod's prototypes patched before any schema exists.
    registry.registerComponent('schemas', `${pascal(def.kind)}Input`, jsonSchema(def.input, 'input'));
    registry.registerComponent('schemas', `${pascal(def.kind)}Result`, jsonSchema(def.result, 'output'));
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'Parley API', version: '1', description: 'Job orchestration for LLM work. Errors are RFC 9457 problem+json with a stable `code`.' },
  });
}

function headersObject(headers: Record<string, HeaderDoc>): Record<string, object> {
  return Object.fromEntries(Object.entries(headers).map(([name, h]) => [name, { description: h.description, schema: h.schema ? jsonSchema(h.schema, 'output') : { type: 'string' } }]));
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): never {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest as never;
}

function pascal(kind: string): string {
  return kind.split(/[.\-_]/).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
}
