/**
 * apache-arrow's IPC writer (18.1, the newest LanceDB takes) writes a boolean
 * column whose values are all null with an empty data buffer. The Arrow IPC
 * format wants one bit per value however many are null, and LanceDB's Rust
 * reader holds it to that: a batch in which a nullable `bool` field is null
 * in every row ("Need at least 1 bytes", "Spill has sent an error") failed,
 * and with it every document upsert that left such a field out.
 *
 * The writer's bool visitor is wrapped so that an all-null column gets a
 * zeroed bitmap of the right length; the validity bitmap, which the writer
 * emits separately, still says every value is null. LanceDB loads the
 * library through `require`, so the CommonJS build (its own copy of the
 * class) is the one patched. Idempotent.
 */
import { createRequire } from 'node:module';

interface BoolData {
  nullCount: number;
  length: number;
  offset: number;
  values: Uint8Array;
}
type Visit = (this: unknown, data: BoolData) => unknown;
const patched = Symbol.for('parley.arrowAllNullBool');

function patch(proto: { visitBool: Visit; [patched]?: true }): void {
  if (proto[patched]) return;
  const original = proto.visitBool;
  proto.visitBool = function (data) {
    if (data.length > 0 && data.nullCount >= data.length) {
      return original.call(this, { nullCount: 0, length: data.length, offset: 0, values: new Uint8Array(Math.ceil(data.length / 8)) });
    }
    return original.call(this, data);
  };
  proto[patched] = true;
}

let done = false;

/** Patches the writer LanceDB uses, once; called before the first write (not at import, so a module that only reads the store's helpers loads nothing more). */
export function fixAllNullBoolColumns(): void {
  if (done) return;
  done = true;
  const require = createRequire(import.meta.url);
  patch((require('apache-arrow/visitor/vectorassembler') as { VectorAssembler: { prototype: { visitBool: Visit } } }).VectorAssembler.prototype);
}
