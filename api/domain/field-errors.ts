/**
 * zod issues as the `errors` of a 400 problem: one `{ path, message }` per
 * issue. An unrecognised key names the keys the object does take, and the
 * closest one when it is a likely typo (`parameters` → `params`), because a
 * bare "Unrecognized key" sends people to the source.
 */
import type { z } from 'zod';

export interface FieldError {
  path: string;
  message: string;
}

/**
 * `input`, the value that was validated, lets a missing required field name
 * the near-miss key the client sent instead (`mesages` for `messages`).
 */
export function issuesToErrors(error: z.ZodError, prefix?: string, schema?: z.ZodType, input?: unknown): FieldError[] {
  return error.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)';
    if (i.code === 'unrecognized_keys' && schema) {
      const allowed = keysAt(schema, i.path);
      if (allowed?.length) return { path, message: unknownKeysMessage(i.keys, allowed) };
    }
    if (i.code === 'invalid_type' && input !== undefined && i.path.length > 0) {
      const parent = valueAt(input, i.path.slice(0, -1));
      const name = String(i.path.at(-1));
      if (parent && typeof parent === 'object' && !Array.isArray(parent) && !(name in parent)) {
        const known = schema ? new Set(keysAt(schema, i.path.slice(0, -1)) ?? []) : new Set<string>();
        const sent = Object.keys(parent).filter((k) => !known.has(k));
        const near = sent.find((k) => closest(k, [name]) === name);
        if (near) return { path, message: `${i.message}: the request has "${near}" instead; did you mean "${name}"?` };
      }
    }
    return { path, message: i.message };
  });
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const p of path) {
    if (!v || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function unknownKeysMessage(keys: readonly string[], allowed: string[]): string {
  const parts = keys.map((k) => {
    const near = closest(k, allowed);
    return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
  });
  return `Unrecognized key${keys.length > 1 ? 's' : ''} ${parts.join(', ')}; allowed: ${allowed.join(', ')}`;
}

/**
 * The allowed key nearest to `key`, when near enough to be a slip: a small
 * edit distance, or a shared stem of at least 4 characters (`parameters` and
 * `params`, `option` and `options`).
 */
function closest(key: string, allowed: string[]): string | undefined {
  const k = key.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const name of allowed) {
    const n = name.toLowerCase();
    let stem = 0;
    while (stem < Math.min(k.length, n.length) && k[stem] === n[stem]) stem++;
    const d = stem >= 4 ? 1 : distance(k, n);
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(key.length / 3)) ? best.name : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

type Def = {
  type?: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  out?: z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
};
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The keys of the object schema at `path` inside `schema` (best effort: unions merge their options' keys). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] | undefined {
  const found = new Set<string>();
  const visit = (s: z.ZodType | undefined, rest: readonly PropertyKey[], depth: number): void => {
    if (!s || depth > 32) return;
    const def = defOf(s);
    switch (def.type) {
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'catch':
      case 'readonly':
      case 'nonoptional':
        return visit(def.innerType, rest, depth + 1);
      case 'pipe':
        return visit(def.in, rest, depth + 1);
      case 'union':
        for (const o of def.options ?? []) visit(o, rest, depth + 1);
        return;
      case 'intersection':
        visit(def.left, rest, depth + 1);
        visit(def.right, rest, depth + 1);
        return;
      case 'array':
        if (rest.length && typeof rest[0] === 'number') visit(def.element, rest.slice(1), depth + 1);
        return;
      case 'object':
        if (!rest.length) {
          for (const k of Object.keys(def.shape ?? {})) found.add(k);
          return;
        }
        return visit(def.shape?.[String(rest[0])], rest.slice(1), depth + 1);
      default:
        return;
    }
  };
  visit(schema, path, 0);
  return found.size ? [...found] : undefined;
}

/** A NUL, or a UTF-16 surrogate without its pair. */
const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Every string in `value` (keys included) that Postgres cannot keep: text refuses NUL, jsonb refuses
 * NUL and unpaired surrogates, and an unpaired surrogate in text silently becomes U+FFFD. Checked on
 * each parsed request part, so such input is a 400 naming the field, never a 500 or a mangled row.
 */
export function unstorableText(value: unknown, path: string[] = []): FieldError[] {
  const out: FieldError[] = [];
  const visit = (v: unknown, at: string[], depth: number): void => {
    if (out.length >= 20 || depth > 64) return;
    if (typeof v === 'string') {
      if (unstorable.test(v)) out.push({ path: at.join('.') || '(root)', message: 'must not contain NUL characters or unpaired UTF-16 surrogates' });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, [...at, String(i)], depth + 1));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (unstorable.test(k)) out.push({ path: [...at, k].join('.'), message: 'a key must not contain NUL characters or unpaired UTF-16 surrogates' });
        visit(x, [...at, k], depth + 1);
      }
    }
  };
  visit(value, path, 0);
  return out;
}
