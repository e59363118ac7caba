/**
 * The import rules of ARCHITECTURE.md, checked on the real source:
 * shared imports only shared (and zod); platform imports shared and
 * platform; api and workers import shared and platform, never each other;
 * sdk imports only shared; web (the arena page) only sdk; nothing imports api or workers except their own
 * package and the entry scripts/tests; and there are no import cycles.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const packages = ['shared', 'platform', 'api', 'workers', 'sdk', 'web', 'migrations'] as const;
type Pkg = (typeof packages)[number];

const allowed: Record<Pkg, Pkg[]> = {
  shared: ['shared'],
  platform: ['platform', 'shared'],
  api: ['api', 'platform', 'shared'],
  workers: ['workers', 'platform', 'shared'],
  sdk: ['sdk', 'shared'],
  web: ['web', 'sdk'],
  migrations: ['migrations'],
};
const sharedExternal = /^(zod)$/;

function files(dir: string): string[] {
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (e === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.tsx?$/.test(e) && !e.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of src.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

const graph = new Map<string, string[]>();
for (const pkg of packages) {
  for (const f of files(join(root, pkg))) {
    graph.set(f, imports(f).filter((i) => i.startsWith('.')).map((i) => resolve(dirname(f), i)));
  }
}
const pkgOf = (f: string) => relative(root, f).split('/')[0] as Pkg;

describe('architecture', () => {
  it('finds the source it checks', () => {
    expect(graph.size).toBeGreaterThan(30);
  });

  it('keeps every import inside the allowed packages', () => {
    const violations: string[] = [];
    for (const [file, deps] of graph) {
      const from = pkgOf(file);
      for (const d of deps) {
        const to = pkgOf(d);
        if (!(allowed[from] ?? []).includes(to)) violations.push(`${relative(root, file)} → ${relative(root, d)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps shared free of runtime dependencies beyond zod', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'shared'))) {
      for (const i of imports(f)) if (!i.startsWith('.') && !sharedExternal.test(i)) bad.push(`${relative(root, f)} imports ${i}`);
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'visiting');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (!graph.has(d)) continue;
        if (state.get(d) === 'visiting') cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(root, x)).join(' → '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
