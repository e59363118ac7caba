/**
 * The OpenAPI 3.1 document, generated from the route declarations and their
 * zod schemas. Never written by hand.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { jobs } from '../shared/index.ts';
import type { Route } from './http/route.ts';

export function buildOpenApi(routes: Route[], extra: { path: string; method: Route['method']; summary: string; tags: string[]; access: string; responses: Route['responses'] }[] = []): object {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key' });
  for (const r of [...routes, ...extra]) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const full = r as Partial<Route>;
    registry.registerPath({
      method: r.method,
      path,
      summary: r.summary,
      tags: r.tags,
      security: r.access === 'public' ? [] : [{ bearer: [] }],
      description: r.access === 'public' ? 'No credentials needed.' : `Needs the \`${r.access}\` permission.`,
      request: {
        ...(full.params ? { params: full.params as z.ZodObject } : {}),
        ...(full.query ? { query: full.query as z.ZodObject } : {}),
        ...(full.body
          ? { body: { required: true, content: { [full.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json']: { schema: full.body } } } }
          : {}),
      },
      responses: Object.fromEntries(
        Object.entries(r.responses).map(([status, res]) => [
          status,
          { description: res.description, ...(res.schema ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema } } } : res.contentType ? { content: { [res.contentType]: { schema: { type: 'string' } } } } : {}) },
        ]),
      ),
    });
  }
  // Each job kind's input and result, so clients can type `input` per kind.
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

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): never {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest as never;
}

function pascal(kind: string): string {
  return kind.split(/[.\-_]/).map((p) => p[0]!.toUpperCase() + p.slice(1)).join('');
}
