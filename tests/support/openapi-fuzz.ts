/**
 * The OpenAPI document as test tooling: fast-check arbitraries for each
 * operation's requests (from its declared request schemas), and a validator
 * for its answers (each against the schema the document declares for that
 * status and content type).
 *
 * Requests come in two flavours: schema-valid ones, generated from the JSON
 * Schema the document gives (the subset zod emits: type, enum, const,
 * properties, required, items, bounds, pattern, format, anyOf/oneOf/allOf,
 * $ref), and near-valid ones, a valid request with one part broken: a field
 * dropped, replaced with a hostile value (NUL, a lone surrogate, a long
 * string, a path, a huge number, a wrong type), an unknown field added, or
 * the whole body replaced with arbitrary JSON or with text that is not JSON.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';

export type Schema = Record<string, unknown>;
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}
export interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, { headers?: Record<string, { schema?: Schema }>; content?: Record<string, { schema?: Schema }> }>;
}
export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Already encoded (JSON, a form, or text that is meant to be broken); undefined for none. */
  body?: string;
  /** What was broken, for the failure message. */
  note: string;
}

/** Values that have broken servers before: NUL, lone surrogates, paths, sizes, numbers at the edges. */
const hostile: unknown[] = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '../../etc/passwd',
  '/etc/shadow',
  '',
  ' ',
  '%00',
  '\u202e',
  'NaN',
  'x'.repeat(20_000),
  -1,
  0,
  1e308,
  -1e308,
  2 ** 53,
  -(2 ** 63),
  1.5,
  null,
  true,
  [],
  {},
  [null],
  { '\u0000': 1 },
  '2026-13-45T99:99:99Z',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '{}',
  "'; drop table jobs; --",
];

const MAX_DEPTH = 6;

export function arbitraryFor(schema: Schema | undefined, doc: OpenApiDoc, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > MAX_DEPTH) return fc.constant(null);
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.split('/').pop()!;
    return arbitraryFor(doc.components?.schemas?.[name], doc, depth + 1);
  }
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (alternatives?.length) return fc.oneof(...alternatives.map((s) => arbitraryFor(s, doc, depth + 1)));
  if (Array.isArray(schema.allOf) && schema.allOf.length) return arbitraryFor(Object.assign({}, ...(schema.allOf as Schema[])), doc, depth + 1);
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : schema.type ? [schema.type as string] : ['object'];
  return fc.oneof(...types.map((t) => typed(t, schema, doc, depth)));
}

function typed(type: string, s: Schema, doc: OpenApiDoc, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = Math.max(Number(s.minimum ?? -1e6), typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1 : -Infinity, -1e9);
      const max = Math.min(Number(s.maximum ?? 1e6), typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum - 1 : Infinity, 1e9);
      return fc.integer({ min: Math.ceil(min), max: Math.floor(Math.max(min, max)) });
    }
    case 'number': {
      const min = Math.max(Number(s.minimum ?? -1e6), typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1e-6 : -Infinity);
      const max = Math.min(Number(s.maximum ?? 1e6), typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum - 1e-6 : Infinity);
      return fc.double({ min, max: Math.max(min, max), noNaN: true, noDefaultInfinity: true });
    }
    case 'string':
      return stringFor(s);
    case 'array': {
      const items = arbitraryFor(s.items as Schema | undefined, doc, depth + 1);
      const minLength = Number(s.minItems ?? 0);
      return fc.array(items, { minLength, maxLength: Math.min(Number(s.maxItems ?? minLength + 3), minLength + 3) });
    }
    default: {
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const required = new Set((s.required ?? []) as string[]);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(props)) record[k] = arbitraryFor(v, doc, depth + 1);
      const base = fc.record(record, { requiredKeys: [...required].filter((k) => k in props) });
      const extra = s.additionalProperties;
      if (extra && typeof extra === 'object' && !Object.keys(props).length) {
        return fc.dictionary(
          fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !k.includes('\u0000')),
          arbitraryFor(extra as Schema, doc, depth + 1),
          { maxKeys: 3 },
        );
      }
      return base;
    }
  }
}

function stringFor(s: Schema): fc.Arbitrary<string> {
  const minLength = Number(s.minLength ?? 0);
  const maxLength = Math.min(Number(s.maxLength ?? minLength + 24), minLength + 64);
  if (s.format === 'uuid') return fc.uuid();
  if (s.format === 'date-time') return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
  if (s.format === 'date')
    return fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
  if (typeof s.pattern === 'string' && s.pattern !== String.raw`^[^\u0000]*$`) {
    try {
      return fc.stringMatching(new RegExp(s.pattern, 'u')).filter((v) => v.length >= minLength && v.length <= Number(s.maxLength ?? Infinity));
    } catch {
      // A pattern JavaScript cannot read: any string will do (the request is then near-valid).
    }
  }
  return fc.string({ minLength, maxLength, unit: 'grapheme' }).filter((v) => !v.includes('\u0000'));
}

type Part = { kind: 'path' | 'query' | 'header'; name: string; schema?: Schema; required: boolean };

/** The parameters and body of one operation, as schema-valid values. */
function validParts(op: Operation, doc: OpenApiDoc) {
  const params: Part[] = (op.parameters ?? [])
    .filter((p) => p.in !== 'cookie')
    .map((p) => ({ kind: p.in as Part['kind'], name: p.name, schema: p.schema, required: p.in === 'path' || !!p.required }));
  const paramArbs: Record<string, fc.Arbitrary<unknown>> = {};
  for (const p of params) paramArbs[`${p.kind}:${p.name}`] = arbitraryFor(p.schema, doc);
  const requiredKeys = params.filter((p) => p.required).map((p) => `${p.kind}:${p.name}`);
  const [contentType, media] = Object.entries(op.requestBody?.content ?? {})[0] ?? [];
  const body = media ? arbitraryFor(media.schema, doc) : fc.constant(undefined);
  return { params, contentType, bodyRequired: !!op.requestBody?.required, arb: fc.record({ params: fc.record(paramArbs, { requiredKeys }), body }) };
}

const mutation = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'valid' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: fc.constantFrom(...hostile) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: fc.jsonValue({ maxDepth: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('extra' as const),
      at: fc.nat(),
      key: fc.constantFrom('__proto__', 'constructor', 'zzz', '\u0000', '$where'),
      value: fc.constantFrom(...hostile),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('param' as const), at: fc.nat(), value: fc.constantFrom(...hostile) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('body' as const), value: fc.jsonValue({ maxDepth: 3 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('text' as const),
      value: fc.constantFrom('{', '{"a":', '[1,2', 'null', '"x"', '\u0000', '{"a":1}{"b":2}', 'a=1&b=2'),
      type: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'),
    }),
  },
);

/** Every [container, key] in a JSON value, depth first: the places a mutation can break. */
function slots(value: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []): typeof out {
  if (Array.isArray(value)) value.forEach((v, i) => (out.push([value, i]), slots(v, out)));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) (out.push([value as Record<string, unknown>, k]), slots(v, out));
  return out;
}

/**
 * encodeURIComponent, except that a lone surrogate (which it refuses) goes out as the three bytes
 * WTF-8 gives it: not UTF-8, which is what the server must refuse cleanly.
 */
function encodeSegment(text: string): string {
  let out = '';
  for (const ch of text) {
    try {
      out += encodeURIComponent(ch);
    } catch {
      const c = ch.charCodeAt(0);
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    }
  }
  return out;
}

function headerSafe(v: unknown): string {
  // fetch refuses header values with control characters or non-Latin-1 text: send what a header can carry.
  return String(typeof v === 'object' ? JSON.stringify(v) : v)
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
}

function encodeForm(body: unknown): string {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(body && typeof body === 'object' ? body : { value: body })) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  return form.toString();
}

/** Requests for one operation: schema-valid, or with one part broken. */
export function requestsFor(method: string, template: string, op: Operation, doc: OpenApiDoc): fc.Arbitrary<FuzzRequest> {
  const { params, contentType, arb } = validParts(op, doc);
  return fc.tuple(arb, mutation).map(([valid, m]) => {
    const values = structuredClone(valid.params) as Record<string, unknown>;
    let body = structuredClone(valid.body);
    let note: string = m.kind;
    let rawBody: string | undefined;
    let type = contentType;
    if ((m.kind === 'replace' || m.kind === 'drop' || m.kind === 'extra') && body !== undefined) {
      const places = slots(body);
      if (m.kind === 'drop' && !places.length) {
        body = undefined;
        note = 'drop the body';
      } else if (m.kind !== 'drop' && (m.kind === 'extra' || !places.length)) {
        const containers = [body, ...places.map(([c, k]) => (c as Record<string, unknown>)[k as string])].filter(
          (c) => c && typeof c === 'object' && !Array.isArray(c),
        ) as Record<string, unknown>[];
        const target = containers[m.at % Math.max(containers.length, 1)];
        if (target) {
          const key = 'key' in m ? m.key : 'zzz';
          Object.defineProperty(target, key, { value: m.value, enumerable: true, writable: true, configurable: true });
          note = `extra ${JSON.stringify(key)}`;
        } else body = m.value;
      } else {
        const [container, key] = places[m.at % places.length]!;
        if (m.kind === 'drop') {
          if (Array.isArray(container)) container.splice(key as number, 1);
          else delete container[key as string];
          note = `drop ${String(key)}`;
        } else {
          (container as Record<string, unknown>)[key as string] = m.value;
          note = `replace ${String(key)}`;
        }
      }
    } else if ((m.kind === 'param' || m.kind === 'replace' || m.kind === 'drop' || m.kind === 'extra') && params.length) {
      // No body to break: break a parameter instead (drop it, or give it a hostile value).
      const p = params[m.at % params.length]!;
      if (m.kind === 'drop') delete values[`${p.kind}:${p.name}`];
      else values[`${p.kind}:${p.name}`] = m.value;
      note = `${m.kind} parameter ${p.name}`;
    } else if (m.kind === 'body') {
      body = m.value;
    } else if (m.kind === 'text') {
      rawBody = m.value;
      type = m.type;
      note = `text ${JSON.stringify(m.value)} as ${m.type}`;
    }
    let path = template;
    const query = new URLSearchParams();
    const headers: Record<string, string> = {};
    for (const p of params) {
      const key = `${p.kind}:${p.name}`;
      if (!(key in values)) {
        if (p.kind === 'path') path = path.replace(`{${p.name}}`, 'x');
        continue;
      }
      const v = values[key];
      // '.' and '..' are dot segments to a URL parser, even encoded: they would name another path.
      const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'x');
      if (p.kind === 'path') path = path.replace(`{${p.name}}`, /^\.{1,2}$/.test(text) ? `x${text}` : encodeSegment(text) || '%20');
      else if (p.kind === 'query') {
        if (Array.isArray(v)) v.forEach((x) => query.append(p.name, typeof x === 'string' ? x : JSON.stringify(x)));
        else if (v !== undefined) query.append(p.name, typeof v === 'string' ? v : JSON.stringify(v));
      } else if (v !== undefined) headers[p.name] = headerSafe(v);
    }
    const qs = query.toString();
    // fetch sends no body with GET or HEAD.
    if (method.toLowerCase() === 'get' || method.toLowerCase() === 'head') rawBody = body = undefined;
    if (rawBody === undefined && body !== undefined) rawBody = type === 'application/x-www-form-urlencoded' ? encodeForm(body) : JSON.stringify(body);
    if (rawBody !== undefined) headers['content-type'] = type ?? 'application/json';
    return { method: method.toUpperCase(), path: qs ? `${path}?${qs}` : path, headers, body: rawBody, note };
  });
}

/**
 * Checks answers against the document: the status is declared for the operation, the content type
 * is one declared for that status, and a JSON body matches the declared schema. Returns the
 * problems found, empty when the answer is as documented.
 */
export function responseValidator(doc: OpenApiDoc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...doc, $id: 'openapi' });
  const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
  const cache = new Map<string, ReturnType<typeof ajv.getSchema>>();
  return (method: string, template: string, status: number, contentType: string | null, body: string): string[] => {
    const op = doc.paths[template]?.[method.toLowerCase()];
    if (!op) return [`${method} ${template} is not in the document`];
    const declared = op.responses[String(status)]
      ? String(status)
      : op.responses[`${String(status)[0]}XX`]
        ? `${String(status)[0]}XX`
        : op.responses.default
          ? 'default'
          : undefined;
    if (!declared) return [`${status} is not declared for ${op.operationId} (declared: ${Object.keys(op.responses).join(', ')})`];
    const content = op.responses[declared]!.content;
    if (!content || !body) return [];
    const media = (contentType ?? '').split(';')[0]!.trim();
    if (!content[media])
      return [`${op.operationId} ${status}: content type ${media || '(none)'} is not declared (declared: ${Object.keys(content).join(', ')})`];
    if (!media.endsWith('json')) return [];
    const ref = `openapi#/${pointer('paths', template, method.toLowerCase(), 'responses', declared, 'content', media, 'schema')}`;
    if (!cache.has(ref)) cache.set(ref, ajv.getSchema(ref));
    const validate = cache.get(ref);
    if (!validate) return [`${op.operationId} ${status}: no schema at ${ref}`];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return [`${op.operationId} ${status}: the body is not JSON`];
    }
    if (validate(parsed)) return [];
    return (validate.errors ?? []).slice(0, 5).map((e) => `${op.operationId} ${status}: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  };
}
