/**
 * Filters as data, compiled to the SQL predicate LanceDB takes in `where()`.
 *
 * Callers never write SQL: a filter names declared columns and values, and
 * this file is the only place that turns values into SQL literals. Column
 * names come from the table's own declaration (never from a request), and
 * every string literal is quoted with its single quotes doubled, so a value
 * cannot end the literal and append SQL.
 *
 * Every query carries a scope: `scope IN (...)` is ANDed in front of the
 * caller's filter, and an empty scope matches nothing rather than everything.
 */
import { isInt32, type FieldType } from './schema.ts';

export type Scalar = string | number | boolean;

/**
 * One column's condition:
 * - a scalar: equality;
 * - `{ in: [...] }`: membership (an empty list matches nothing);
 * - `{ gt, gte, lt, lte }`: a numeric range (any subset); with `orNull`, a row without a value passes too
 *   (an expiry instant that is absent: never expires);
 * - `{ prefix }`: a string column starting with the prefix (paths: `src/`);
 * - `{ has }`: a `string[]` column containing the value.
 */
export type Condition =
  Scalar | { in: readonly Scalar[] } | { gt?: number; gte?: number; lt?: number; lte?: number; orNull?: boolean } | { prefix: string } | { has: string };

/** Conditions on several columns, all of which must hold. */
export type Where = Readonly<Record<string, Condition>>;

export class FilterError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'FilterError';
  }
}

/** A SQL string literal: single-quoted, quotes doubled, NUL refused (Lance's parser stops at it). */
export function sqlString(value: string): string {
  if (value.includes('\u0000')) throw new FilterError('a filter value contains a NUL character', '');
  return `'${value.replaceAll("'", "''")}'`;
}

function sqlNumber(value: number, field: string): string {
  if (!Number.isFinite(value)) throw new FilterError(`${field}: expected a finite number`, field);
  return String(value);
}

function literal(value: Scalar, type: FieldType, field: string): string {
  switch (type) {
    case 'string':
    case 'string[]':
      if (typeof value !== 'string') throw new FilterError(`${field}: expected a string`, field);
      return sqlString(value);
    case 'int':
      if (!isInt32(value)) throw new FilterError(`${field}: expected a 32-bit integer (-2147483648 to 2147483647)`, field);
      return sqlNumber(value, field);
    case 'float':
      if (typeof value !== 'number') throw new FilterError(`${field}: expected a number`, field);
      return sqlNumber(value, field);
    case 'bool':
      if (typeof value !== 'boolean') throw new FilterError(`${field}: expected true or false`, field);
      return value ? 'true' : 'false';
  }
}

/** `starts_with(path, 'src/')`: no wildcards to escape, unlike LIKE. */
function prefixPredicate(column: string, prefix: string): string {
  return `starts_with(${column}, ${sqlString(prefix)})`;
}

function compileCondition(column: string, type: FieldType, cond: Condition): string {
  if (typeof cond !== 'object' || cond === null) {
    if (type === 'string[]') return `array_has(${column}, ${literal(cond, type, column)})`;
    return `${column} = ${literal(cond, type, column)}`;
  }
  if ('in' in cond) {
    if (!Array.isArray(cond.in)) throw new FilterError(`${column}.in: expected a list`, column);
    if (cond.in.length === 0) return 'false';
    if (type === 'string[]') return `(${cond.in.map((v) => `array_has(${column}, ${literal(v, type, column)})`).join(' OR ')})`;
    return `${column} IN (${cond.in.map((v) => literal(v, type, column)).join(', ')})`;
  }
  if ('prefix' in cond) {
    if (type !== 'string' || typeof cond.prefix !== 'string') throw new FilterError(`${column}.prefix applies to string fields only`, column);
    return prefixPredicate(column, cond.prefix);
  }
  if ('has' in cond) {
    if (type !== 'string[]' || typeof cond.has !== 'string') throw new FilterError(`${column}.has applies to list fields only`, column);
    return `array_has(${column}, ${sqlString(cond.has)})`;
  }
  if (type !== 'int' && type !== 'float') throw new FilterError(`${column}: ranges apply to numeric fields only`, column);
  const parts: string[] = [];
  const ops = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
  let given = 0;
  for (const [key, op] of Object.entries(ops) as [keyof typeof ops, string][]) {
    const v = cond[key];
    if (v === undefined) continue;
    given++;
    sqlNumber(v, column);
    const part = type === 'int' ? intBound(column, key, v) : `${column} ${op} ${sqlNumber(v, column)}`;
    if (part) parts.push(part);
  }
  if (!given) throw new FilterError(`${column}: empty condition`, column);
  // Every bound held for every integer: any value passes.
  if (!parts.length) parts.push(`${column} IS NOT NULL`);
  return cond.orNull ? `${column} IS NULL OR (${parts.join(' AND ')})` : parts.join(' AND ');
}

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

/**
 * One bound of a range on a 32-bit integer column, as the same set of integers with an integer
 * literal the column's type takes (LanceDB refused `n > 1.5` and `n <= 2147483648` on an Int32
 * column). `n > 1.5` is `n > 1`; a bound every integer meets gives no predicate (undefined); one
 * none meets gives `false`.
 */
function intBound(column: string, key: 'gt' | 'gte' | 'lt' | 'lte', v: number): string | undefined {
  // As a bound on integers: n > v ⇔ n > floor(v); n ≥ v ⇔ n ≥ ceil(v); n < v ⇔ n < ceil(v); n ≤ v ⇔ n ≤ floor(v).
  const b = key === 'gt' || key === 'lte' ? Math.floor(v) : Math.ceil(v);
  const lower = key === 'gt' || key === 'gte';
  // The least or greatest integer allowed, inclusive.
  const edge = key === 'gt' ? b + 1 : key === 'lt' ? b - 1 : b;
  if (lower) {
    if (edge > INT32_MAX) return 'false';
    if (edge <= INT32_MIN) return undefined;
    return `${column} >= ${edge}`;
  }
  if (edge < INT32_MIN) return 'false';
  if (edge >= INT32_MAX) return undefined;
  return `${column} <= ${edge}`;
}

/**
 * The predicate for `scope IN (scopes) AND <where>`. `columns` maps the
 * public field names a caller may filter on to their column and type.
 */
export function compileWhere(scopes: readonly string[], where: Where | undefined, columns: ReadonlyMap<string, { column: string; type: FieldType }>): string {
  const parts = [scopes.length ? `scope IN (${scopes.map(sqlString).join(', ')})` : 'false'];
  for (const [field, cond] of Object.entries(where ?? {})) {
    if (cond === undefined) continue;
    const col = columns.get(field);
    if (!col) throw new FilterError(`unknown filter field "${field}"; filterable: ${[...columns.keys()].join(', ') || '(none)'}`, field);
    parts.push(`(${compileCondition(col.column, col.type, cond)})`);
  }
  return parts.join(' AND ');
}
