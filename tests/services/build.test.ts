/**
 * The flags Ollama's native build gets. ggml chooses its kernels by the compiler's predefined macros,
 * so these tests ask the real compiler which macros a flag set defines, for CPUs other than this one
 * (`-march=<cpu>` stands in for `-march=native` on that CPU).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { failedBefore, failureRecord, gccTargetFeatures, nativeCflags, ollamaFlavours } from '../../scripts/services/build.ts';
import { settings } from '../../scripts/services/settings.ts';

/** The macros gcc predefines for these flags. */
function macros(flags: string[]): Set<string> {
  const out = execFileSync('gcc', [...flags, '-dM', '-E', '-x', 'c', '-'], { input: '', encoding: 'utf8' });
  return new Set(out.split('\n').map((l) => l.split(' ')[1] ?? ''));
}

describe("Ollama's native build flags", () => {
  it('switch AMX off on a CPU that has it, so ggml-cpu does not call the AMX backend the cgo build lacks, and keep AVX-512', () => {
    // v0.11.4's native build on Sapphire Rapids failed to link (undefined ggml_backend_amx_buffer_type),
    // and the portable fallback made embeddings 14x slower.
    const features = gccTargetFeatures('sapphirerapids');
    expect(features).toContain('-mamx-int8');
    const flags = nativeCflags(features)
      .split(' ')
      .map((f) => (f === '-march=native' ? '-march=sapphirerapids' : f));
    expect(macros(['-march=sapphirerapids']).has('__AMX_INT8__')).toBe(true);
    const built = macros(flags);
    expect(built.has('__AMX_INT8__')).toBe(false);
    expect(built.has('__AMX_TILE__')).toBe(false);
    expect(built.has('__AVX512F__')).toBe(true);
    expect(built.has('__AVX512VNNI__')).toBe(true);
  });

  it('are plain -O3 -march=native on a CPU without AMX', () => {
    expect(nativeCflags(gccTargetFeatures('znver3'))).toBe('-O3 -march=native');
    expect(nativeCflags(gccTargetFeatures('icelake-server'))).toBe('-O3 -march=native');
    expect(nativeCflags(gccTargetFeatures('haswell'))).toBe('-O3 -march=native');
  });

  it('try native first, then AVX2 (x86-64-v3) on a CPU that has it, then portable', () => {
    if (settings.ollamaBuild === 'portable') {
      expect(ollamaFlavours().map((f) => f.name)).toEqual(['portable']);
      return;
    }
    expect(ollamaFlavours(gccTargetFeatures('haswell')).map((f) => f.name)).toEqual(['native', 'x86-64-v3', 'portable']);
    expect(ollamaFlavours(gccTargetFeatures('sandybridge')).map((f) => f.name)).toEqual(['native', 'portable']);
  });

  it('pass over a flavour that failed in the last day with the same flags, and try it again when they change or the day is over', () => {
    const [native] = ollamaFlavours(gccTargetFeatures('haswell'));
    const record = failureRecord(native!);
    const saved = existsSync(record) ? readFileSync(record, 'utf8') : undefined;
    try {
      mkdirSync(dirname(record), { recursive: true });
      const at = Date.parse('2026-12-07T00:00:00Z');
      writeFileSync(record, JSON.stringify({ cflags: native!.cflags, at: new Date(at).toISOString(), error: 'ld: undefined reference' }));
      expect(failedBefore(native!, at + 3600_000)).toBe('ld: undefined reference');
      expect(failedBefore(native!, at + 25 * 3600_000)).toBeUndefined();
      expect(failedBefore({ ...native!, cflags: `${native!.cflags} -mno-amx-tile` }, at + 3600_000)).toBeUndefined();
    } finally {
      if (saved === undefined) rmSync(record, { force: true });
      else writeFileSync(record, saved);
    }
  });
});
