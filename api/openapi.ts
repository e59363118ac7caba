/**
 * The OpenAPI 3.1 document, generated from the route declarations and their
 * zod schemas. Never written by hand.
 *
 * Beyond what each route declares, the generator adds what holds for whole
 * classes of routes, so the document cannot forget it:
 * - every operation has its `operationId`;
 * - every operation answers 400 (a body that is not JSON reaches any route's parser first), 413
 *   (a body over PARLEY_BODY_LIMIT) and 415 (a body in a charset other than UTF-8 or an encoding
 *   the parser does not take; for one that takes a body, also another content type);
 * - every operation answers 431 (a request line and headers over Node's 16 KiB) and 408 (a request
 *   that did not arrive in time), both refused before routing;
 * - every operation answers 401 (with WWW-Authenticate): one that needs credentials when they are
 *   missing or bad, a public one when an Authorization header was sent and is bad; one that needs
 *   credentials answers 403 as well (with RFC 6750's insufficient_scope challenge);
 * - a route with path parameters answers 404;
 * - every /v1 route is rate limited: 429 with Retry-After, and RateLimit / RateLimit-Policy
 *   (draft-ietf-httpapi-ratelimit-headers) on its answers;
 * - every operation answers 503 with Retry-After: a backing service down, or the request timeout;
 * - every answer carries X-Request-Id.
 * A method a path does not declare is 405 with Allow (api/http/mount.ts); 500 is never declared:
 * it would be a bug. Headers every response carries whatever it is (helmet's security headers,
 * Content-Type, Content-Length, Date, Connection, Keep-Alive, Vary, CORS) are not listed per answer.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { jobs, Problem } from '../shared/index.ts';
import type { HeaderDoc, Route } from './http/route.ts';

/** A streaming endpoint mounted outside the route table (SSE), described for the document. */
export type DocumentedEndpoint = Pick<
  Route,
  'path' | 'method' | 'operationId' | 'summary' | 'tags' | 'responses' | 'requestHeaders' | 'params' | 'query' | 'description'
> & { access: string };

const headerSchemas = {
  requestId: { description: 'The request id: also in the problem body and the server log line.', schema: z.string() },
  rateLimit: {
    description: 'Remaining quota per limiter: `"<limiter>"; r=<remaining>; t=<seconds to reset>` (draft-ietf-httpapi-ratelimit-headers-08).',
    schema: z.string(),
  },
  rateLimitPolicy: { description: 'The limiters that apply: `"<limiter>"; q=<quota>; w=<window seconds>`.', schema: z.string() },
  retryAfter: { description: 'Seconds to wait before trying again.', schema: z.number().int() },
} satisfies Record<string, HeaderDoc>;

export function buildOpenApi(routes: Route[], extra: DocumentedEndpoint[] = []): object {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key' });
  // The same bearer tokens, as the OAuth2 password flow of POST /v1/auth/token issues and refreshes them.
  registry.registerComponent('securitySchemes', 'oauth2', {
    type: 'oauth2',
    flows: { password: { tokenUrl: '/v1/auth/token', refreshUrl: '/v1/auth/token', scopes: {} } },
  });
  const seen = new Set<string>();
  for (const r of [...routes, ...extra]) {
    if (seen.has(r.operationId)) throw new Error(`operationId ${r.operationId} is used twice`);
    seen.add(r.operationId);
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const full = r as Partial<Route>;
    const body = full.documentedBody ?? full.body;
    const isPublic = r.access === 'public';
    const limited = r.path.startsWith('/v1/');
    const common = {
      'X-Request-Id': headerSchemas.requestId,
      ...(limited ? { RateLimit: headerSchemas.rateLimit, 'RateLimit-Policy': headerSchemas.rateLimitPolicy } : {}),
    };
    const responses: Record<string, object> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      const content: Record<string, object> = res.schema
        ? { [res.contentType ?? 'application/json']: { schema: res.schema } }
        : res.contentType
          ? { [res.contentType]: { schema: { type: 'string' } } }
          : {};
      // A 503 the route answers with a body of its own (readiness) can also come from the error middleware, as a problem.
      if (status === '503' && res.contentType !== 'application/problem+json') content['application/problem+json'] = { schema: Problem };
      responses[status] = {
        description: res.description,
        headers: headersObject({ ...common, ...res.headers }),
        ...(Object.keys(content).length ? { content } : {}),
      };
    }
    const problem = (description: string, headers: Record<string, HeaderDoc> = {}) => ({
      description,
      headers: headersObject({ ...common, ...headers }),
      content: { 'application/problem+json': { schema: Problem } },
    });
    const inputs = body || full.query || full.params;
    responses[400] ??= problem(
      inputs
        ? 'The body, query or path is not valid (VALIDATION_FAILED, naming each field), or the body is not JSON (MALFORMED_BODY)'
        : 'A body was sent and is not valid JSON (MALFORMED_BODY)',
    );
    responses[413] ??= problem('The body is larger than PARLEY_BODY_LIMIT (PAYLOAD_TOO_LARGE)');
    // Any route's body parser refuses a charset other than UTF-8 or a Content-Encoding it does not take, body declared or not.
    responses[415] ??= problem(
      body
        ? `The body is not ${full.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json'}, or is in a charset other than UTF-8 or an encoding not taken (UNSUPPORTED_MEDIA_TYPE)`
        : 'A body was sent in a charset other than UTF-8 or an encoding not taken (UNSUPPORTED_MEDIA_TYPE)',
    );
    // Node's HTTP parser refuses these before any route (api/main.ts answerClientError): a problem all the same.
    responses[431] ??= problem('The request line and headers together are larger than 16 KiB (HEADERS_TOO_LARGE); answered before any route');
    responses[408] ??= problem('The request line, headers or body did not arrive in time (CLIENT_TIMEOUT); answered before any route');
    const wwwAuthenticate = { 'WWW-Authenticate': { description: 'Bearer, with the reason as error_description', schema: z.string() } };
    if (!isPublic) {
      responses[401] ??= problem('No valid credentials (UNAUTHENTICATED)', wwwAuthenticate);
      if (r.access !== 'authenticated')
        responses[403] ??= problem(`The credential lacks the \`${r.access}\` permission (FORBIDDEN)`, {
          'WWW-Authenticate': { description: `Bearer, error="insufficient_scope", scope="${r.access}" (RFC 6750 §3.1)`, schema: z.string() },
        });
    } else {
      responses[401] ??= problem(
        'An Authorization header was sent and is not valid (UNAUTHENTICATED); without one, no credentials are needed',
        wwwAuthenticate,
      );
    }
    if (/:\w+/.test(r.path)) responses[404] ??= problem('No such resource, or not visible to you');
    if (limited)
      responses[429] ??= problem('Rate limited (RATE_LIMITED), or a token budget is spent (BUDGET_EXHAUSTED)', { 'Retry-After': headerSchemas.retryAfter });
    responses[503] ??= problem(
      'A backing service (Redis, Postgres, the queue) is unavailable: nothing was done (SERVICE_UNAVAILABLE and its kin). Or the request took longer than PARLEY_REQUEST_TIMEOUT_MS (REQUEST_TIMEOUT): the outcome is unknown, the work may still be carried out, so repeat only what is safe to repeat',
      { 'Retry-After': headerSchemas.retryAfter },
    );
    registry.registerPath({
      method: r.method,
      path,
      operationId: r.operationId,
      summary: r.summary,
      tags: r.tags,
      security: isPublic ? [] : [{ bearer: [] }, { oauth2: [] }],
      description: [
        full.description,
        isPublic
          ? 'No credentials needed.'
          : r.access === 'authenticated'
            ? 'Needs any valid credential, whatever its scope.'
            : `Needs the \`${r.access}\` permission.`,
      ]
        .filter(Boolean)
        .join('\n\n'),
      request: {
        ...(full.params ? { params: full.params as z.ZodObject } : {}),
        ...(full.query ? { query: full.query as z.ZodObject } : {}),
        ...(r.requestHeaders
          ? {
              headers: z.object(
                Object.fromEntries(Object.entries(r.requestHeaders).map(([name, h]) => [name, (h.schema ?? z.string()).optional().describe(h.description)])),
              ),
            }
          : {}),
        // Required only where an absent body (read as {}) is refused: a PATCH of optional fields takes none.
        ...(body
          ? {
              body: {
                required: !(full.body ?? body).safeParse({}).success,
                content: { [full.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: body } },
              },
            }
          : {}),
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
  const doc = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    // Paths are relative to wherever the document was fetched from (OpenAPI's default, said out loud for linters).
    servers: [{ url: '/' }],
    info: {
      title: 'Parley API',
      version: '1',
      description:
        'Job orchestration for LLM work. Errors are RFC 9457 problem+json with a stable `code`. No text a request carries may hold a NUL or an unpaired UTF-16 surrogate (Postgres cannot store them; 400 VALIDATION_FAILED naming the field): every string and object key of a request says so for NUL with a pattern.',
    },
  });
  sameTypeTuples(doc);
  for (const methods of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(
      methods as Record<string, { parameters?: { schema?: unknown }[]; requestBody?: { content?: Record<string, { schema?: unknown }> } }>,
    )) {
      if (!op || typeof op !== 'object') continue;
      for (const p of op.parameters ?? []) storableStrings(p.schema);
      for (const c of Object.values(op.requestBody?.content ?? {})) storableStrings(c.schema);
    }
  }
  return doc;
}

/**
 * What api/http/validation.ts `unstorableText` refuses, as far as a pattern can say it: no NUL. The
 * other half of the rule, no unpaired UTF-16 surrogate, has no portable pattern (validators that work
 * on Unicode scalar values, Rust's and Python's, cannot name a surrogate), so it is in the document's
 * description only.
 */
export const STORABLE_PATTERN = String.raw`^[^\u0000]*$`;

/**
 * Puts the rules every request field follows into a request schema, in place: the storable rule on
 * every string that has no pattern, enum, const or format of its own (those that have one exclude NUL
 * already) and on the keys of every object that takes keys it does not name; and the safe-integer
 * range on integers.
 */
function storableStrings(schema: unknown): void {
  if (!schema || typeof schema !== 'object') return;
  if (Array.isArray(schema)) return schema.forEach(storableStrings);
  const s = schema as Record<string, unknown>;
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes('string') && s.pattern === undefined && s.enum === undefined && s.const === undefined && s.format === undefined)
    s.pattern = STORABLE_PATTERN;
  // zod's int() takes safe integers only: the document says so where the schema names no tighter bound.
  if (types.includes('integer')) {
    s.maximum ??= Number.MAX_SAFE_INTEGER;
    if (s.minimum === undefined && s.exclusiveMinimum === undefined) s.minimum = Number.MIN_SAFE_INTEGER;
  }
  if ((types.includes('object') || s.additionalProperties !== undefined) && s.additionalProperties !== false && s.propertyNames === undefined)
    s.propertyNames = { pattern: STORABLE_PATTERN };
  for (const key of ['properties', 'patternProperties', '$defs']) for (const v of Object.values((s[key] as Record<string, unknown>) ?? {})) storableStrings(v);
  for (const key of ['items', 'additionalProperties', 'not', 'contains', 'prefixItems', 'anyOf', 'oneOf', 'allOf', 'if', 'then', 'else'])
    storableStrings(s[key]);
}

/**
 * Rewrites, in place, every tuple whose members share one schema (a `[start, end]` span) as an array of
 * that schema with a fixed length. Both say the same in JSON Schema 2020-12, but `prefixItems` alone
 * leaves the length open, and tools that still read tuples the OpenAPI 3.0 way (an `items` list,
 * which Schemathesis then rejects as an invalid schema) stumble on it.
 */
function sameTypeTuples(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) return node.forEach(sameTypeTuples);
  const s = node as Record<string, unknown>;
  const members = s.prefixItems;
  if (Array.isArray(members) && members.length > 0 && (s.items === undefined || s.items === false)) {
    const first = JSON.stringify(members[0]);
    if (members.every((m) => JSON.stringify(m) === first)) {
      delete s.prefixItems;
      s.items = members[0];
      s.minItems = members.length;
      s.maxItems = members.length;
    }
  }
  for (const v of Object.values(s)) sameTypeTuples(v);
}

function headersObject(headers: Record<string, HeaderDoc>): Record<string, object> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, h]) => [name, { description: h.description, schema: h.schema ? jsonSchema(h.schema, 'output') : { type: 'string' } }]),
  );
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): never {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest as never;
}

function pascal(kind: string): string {
  return kind
    .split(/[.\-_]/)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}
