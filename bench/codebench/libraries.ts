/**
 * Real libraries nobody here wrote, at pinned versions, fetched from the
 * package registries with their own clients (`npm pack`, `pip download`)
 * into a cache folder outside the repository, and unpacked there. The
 * benchmark and the metadata tests read them; nothing of them is committed.
 *
 * Cache: PARLEY_BENCH_CACHE, else ~/.cache/parley/codebench.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';

export interface Library {
  name: string;
  version: string;
  registry: 'npm' | 'pypi';
  language: 'javascript' | 'typescript' | 'python';
  /** Which files of the unpacked package are the library's source, relative to its folder. */
  include: (path: string) => boolean;
}

export const libraries = {
  /** JavaScript, one function per module, each with a JSDoc description. */
  lodash: {
    name: 'lodash',
    version: '4.17.21',
    registry: 'npm',
    language: 'javascript',
    include: (p) => /^package\/[^/]+\.js$/.test(p) && !/^package\/(lodash|core|fp|lodash\.min|core\.min)\.js$/.test(p),
  },
  /** Python, about 200 functions with careful docstrings. */
  moreItertools: {
    name: 'more-itertools',
    version: '10.5.0',
    registry: 'pypi',
    language: 'python',
    include: (p) => /^more_itertools\/[^/]+\.py$/.test(p),
  },
  /** TypeScript sources (the package ships src/). */
  rxjs: {
    name: 'rxjs',
    version: '7.8.1',
    registry: 'npm',
    language: 'typescript',
    include: (p) => /^package\/src\/.+\.ts$/.test(p) && !p.endsWith('.d.ts'),
  },
} satisfies Record<string, Library>;

export function cacheDir(): string {
  const dir = process.env.PARLEY_BENCH_CACHE ?? join(homedir(), '.cache', 'parley', 'codebench');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The unpacked library's folder, fetching and unpacking it the first time. */
export function fetchLibrary(lib: Library): string {
  const cache = cacheDir();
  const dir = join(cache, `${lib.name}-${lib.version}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const staging = `${dir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  if (lib.registry === 'npm') {
    const file = execFileSync('npm', ['pack', `${lib.name}@${lib.version}`, '--pack-destination', cache, '--silent'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync('tar', ['xzf', join(cache, file), '-C', staging]);
  } else {
    execFileSync('python3', ['-m', 'pip', 'download', `${lib.name}==${lib.version}`, '--no-deps', '--only-binary=:all:', '-d', cache, '-q'], {
      stdio: 'inherit',
    });
    const wheel = readdirSync(cache).find((f) => f.startsWith(`${lib.name.replace(/-/g, '_')}-${lib.version}-`) && f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip did not leave a wheel for ${lib.name} ${lib.version} in ${cache}`);
    execFileSync('python3', ['-m', 'zipfile', '-e', join(cache, wheel), staging]);
  }
  execFileSync('touch', [join(staging, '.complete')]);
  renameSync(staging, dir);
  return dir;
}

/** The library's source files: path (relative to its folder) and content, in path order. */
export function librarySources(lib: Library): { path: string; content: string }[] {
  const dir = fetchLibrary(lib);
  const out: { path: string; content: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const rel = relative(dir, p);
        if (lib.include(rel)) out.push({ path: rel, content: readFileSync(p, 'utf8') });
      }
    }
  };
  walk(dir);
  return out;
}
