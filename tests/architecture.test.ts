/**
 * The import rules of ARCHITECTURE.md, checked on the real source:
 * shared imports only shared (and zod); platform imports shared and
 * platform; api and workers import shared and platform, never each other;
 * sdk imports only shared; web (the arena page) only sdk; nothing imports api or workers except their own
 * package and the entry scripts/tests; and there are no import cycles.
 * Also: a platform folder is entered only through its index.ts, and route
 * files hold no SQL (they call domain functions, which call platform).
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
    graph.set(
      f,
      imports(f)
        .filter((i) => i.startsWith('.'))
        .map((i) => resolve(dirname(f), i)),
    );
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

  it('enters every platform folder through its index.ts', () => {
    const bad: string[] = [];
    for (const [file, deps] of graph) {
      for (const d of deps) {
        const rel = relative(root, d).split('/');
        if (rel[0] !== 'platform' || rel.length < 3) continue;
        const folder = rel.slice(0, 2).join('/');
        if (relative(root, file).startsWith(`${folder}/`)) continue;
        if (rel.slice(2).join('/') !== 'index.ts') bad.push(`${relative(root, file)} → ${rel.join('/')}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keeps SQL out of route files', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'api', 'routes'))) {
      const rel = relative(root, f);
      const src = readFileSync(f, 'utf8');
      if (/platform\/connections\//.test(src)) bad.push(`${rel} imports platform/connections (the database)`);
      for (const m of src.matchAll(/\bdb\(|\bknex\b|\.(?:raw|whereRaw|joinRaw|orderByRaw)\(|['"`]\s*(?:select|insert into|update|delete from|with)\s/gi))
        bad.push(`${rel}: ${m[0]}`);
    }
    expect(bad).toEqual([]);
  });

  it('keeps route files to declarations: no schema built inline (they live in shared/)', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'api', 'routes'))) {
      const src = readFileSync(f, 'utf8');
      if (/from 'zod'/.test(src)) bad.push(`${relative(root, f)} imports zod`);
    }
    expect(bad).toEqual([]);
  });

  it('keeps contracts in shared/: no zod schema is exported from platform/ (config.ts reads the environment and exports none)', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'platform'))) {
      const src = readFileSync(f, 'utf8');
      for (const m of src.matchAll(/^export const (\w+)\s*=\s*z\./gm)) bad.push(`${relative(root, f)}: ${m[1]}`);
    }
    expect(bad).toEqual([]);
  });

  it('keeps the domain free of the HTTP layer (no express, no api/http, no api/realtime)', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'api', 'domain'))) {
      for (const i of imports(f)) if (i === 'express' || /\/(http|realtime|routes)\//.test(i)) bad.push(`${relative(root, f)} imports ${i}`);
    }
    expect(bad).toEqual([]);
  });

  it('keeps BullMQ inside the job lifecycle (platform/jobs) and the worker runtime', () => {
    const bad: string[] = [];
    for (const pkg of ['api', 'platform', 'workers', 'shared', 'sdk'] as const) {
      for (const f of files(join(root, pkg))) {
        const rel = relative(root, f);
        if (rel.startsWith('platform/jobs/') || rel.startsWith('workers/runtime/')) continue;
        if (imports(f).some((i) => i === 'bullmq' || i.startsWith('bullmq/'))) bad.push(rel);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keeps at most three single files at the top of platform/ (the rest are modules)', () => {
    const top = readdirSync(join(root, 'platform')).filter((e) => statSync(join(root, 'platform', e)).isFile());
    expect(top.length, top.join(', ')).toBeLessThanOrEqual(3);
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
