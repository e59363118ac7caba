/**
 * The shape of a vector table: six core columns every table has, plus the
 * typed fields its owner declares (a code table's path and language, a
 * collection's metadata).
 *
 * Core columns:
 *   id            utf8, the row's key (upserts match on it)
 *   scope         utf8, the partition every query must name (a repository,
 *                 a collection's tenant): `scope IN (...)` is ANDed into
 *                 every filter, so a caller cannot forget it
 *   text          utf8, what a hit shows (a snippet's source)
 *   search_text   utf8, what the full-text index reads: the text after the
 *                 code-aware analyzer (identifiers split, see analyzer.ts)
 *   content_hash  utf8, sha256 of the text that was embedded: equal hash,
 *                 equal vector, so a vector is computed once per content
 *   vector        fixed_size_list<float32>[dimensions]
 *
 * A table may also declare more representations of each row: extra vector
 * columns (another text embedded, e.g. a definition's name and signature,
 * in the same space) and extra full-text columns (named `*_text`, each with
 * its own full-text index). Search fuses them (store.ts).
 */
import { Bool, DataType, Field, FixedSizeList, Float32, Float64, Int32, List, Schema, Utf8 } from 'apache-arrow';

export type FieldType = 'string' | 'int' | 'float' | 'bool' | 'string[]';

/** Whether a metadata value fits a declared field (null fits any: the field is then empty). */
/** `int` fields are 32-bit in LanceDB (Int32): a larger integer came back wrapped (3000000000 as -1294967296). */
export function isInt32(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= -2_147_483_648 && (v as number) <= 2_147_483_647;
}

export function fitsFieldType(type: FieldType, v: unknown): boolean {
  if (v === null) return true;
  switch (type) {
    case 'string[]':
      return Array.isArray(v);
    case 'int':
      return isInt32(v);
    case 'float':
      return typeof v === 'number';
    case 'bool':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
  }
}

export interface TableSpec {
  /** The LanceDB table name: letters, digits and underscores. */
  name: string;
  dimensions: number;
  /** Declared fields, by column name (lower snake case). Nullable, except where a writer always sets them. */
  fields: Readonly<Record<string, FieldType>>;
  /** Extra vector columns, same dimensions as `vector`; every row sets them. */
  vectors?: readonly string[];
  /** Extra full-text columns, named `*_text`, stored analyzed (analyzer.ts). */
  texts?: readonly string[];
}

export const coreColumns = ['id', 'scope', 'text', 'search_text', 'content_hash', 'vector'] as const;

const columnName = /^[a-z][a-z0-9_]{0,62}$/;
const tableName = /^[A-Za-z][A-Za-z0-9_]{0,127}$/;

export function validateSpec(spec: TableSpec): void {
  if (!tableName.test(spec.name)) throw new Error(`invalid vector table name "${spec.name}"`);
  if (!Number.isInteger(spec.dimensions) || spec.dimensions < 1 || spec.dimensions > 8192) throw new Error(`invalid vector dimensions ${spec.dimensions}`);
  const names = [...Object.keys(spec.fields), ...(spec.vectors ?? []), ...(spec.texts ?? [])];
  for (const name of names) {
    if (!columnName.test(name) || (coreColumns as readonly string[]).includes(name) || name.startsWith('_')) throw new Error(`invalid column name "${name}"`);
  }
  if (new Set(names).size !== names.length) throw new Error('a column is declared twice');
  for (const name of Object.keys(spec.fields)) if (name.endsWith('_text')) throw new Error(`field "${name}": names ending in _text are for full-text columns`);
  for (const name of spec.texts ?? []) if (!name.endsWith('_text')) throw new Error(`full-text column "${name}" must end in _text`);
}

function arrowType(type: FieldType): DataType {
  switch (type) {
    case 'string':
      return new Utf8();
    case 'int':
      return new Int32();
    case 'float':
      return new Float64();
    case 'bool':
      return new Bool();
    case 'string[]':
      return new List(new Field('item', new Utf8(), true));
  }
}

export function arrowSchema(spec: TableSpec): Schema {
  return new Schema([
    new Field('id', new Utf8(), false),
    new Field('scope', new Utf8(), false),
    new Field('text', new Utf8(), false),
    new Field('search_text', new Utf8(), false),
    new Field('content_hash', new Utf8(), false),
    new Field('vector', new FixedSizeList(spec.dimensions, new Field('item', new Float32(), true)), false),
    ...Object.entries(spec.fields).map(([name, type]) => new Field(name, arrowType(type), true)),
    ...(spec.vectors ?? []).map((name) => new Field(name, new FixedSizeList(spec.dimensions, new Field('item', new Float32(), true)), false)),
    ...(spec.texts ?? []).map((name) => new Field(name, new Utf8(), false)),
  ]);
}

/** The spec of an existing table, read back from its schema (for maintenance, which opens tables by name). */
export function specFromSchema(name: string, schema: Schema): TableSpec {
  const fields: Record<string, FieldType> = {};
  const vectors: string[] = [];
  const texts: string[] = [];
  let dimensions = 0;
  for (const f of schema.fields) {
    if (DataType.isFixedSizeList(f.type)) {
      if (f.name === 'vector') dimensions = f.type.listSize;
      else vectors.push(f.name);
      continue;
    }
    if ((coreColumns as readonly string[]).includes(f.name)) continue;
    const t = f.type;
    if (DataType.isUtf8(t) && f.name.endsWith('_text')) {
      texts.push(f.name);
      continue;
    }
    fields[f.name] = DataType.isUtf8(t) ? 'string' : DataType.isInt(t) ? 'int' : DataType.isFloat(t) ? 'float' : DataType.isBool(t) ? 'bool' : 'string[]';
  }
  return { name, dimensions, fields, ...(vectors.length ? { vectors } : {}), ...(texts.length ? { texts } : {}) };
}
