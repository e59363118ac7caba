/**
 * Ignore rules against git itself: a fixture tree with nested .gitignore
 * files, every path checked with `git check-ignore` and with ours. Then the
 * `.parleyignore` layer, which git knows nothing about, on cases written out
 * by hand; then what the tree scan skips and why.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IgnoreMatcher, scanTree } from '../../platform/code/index.ts';

const gitignores: Record<string, string> = {
  '.gitignore': [
    '# comment line',
    '*.log',
    '!important.log',
    '/root-only.txt',
    'build/',
    'docs/*.md',
    '!docs/keep.md',
    'secret?.txt',
    'tmp[0-9].txt',
    'data[!a].csv',
    '**/cache/**',
    'deep/**/gen',
    '\\#hash.txt',
    '\\!bang.txt',
    'trailing.txt   ',
    'vendor',
    '*.tmp/',
    'a/b/c.txt',
    '[Cc]aps.txt',
    'only-dir/',
    'nested/**',
    '!nested/keep/',
    'x*/y',
  ].join('\n'),
  'src/.gitignore': ['*.gen.ts', '!keep.gen.ts', '/local.ts', 'sub/'].join('\n'),
  'src/deeper/.gitignore': ['!*.log', 'override.ts'].join('\n'),
  'pkg/.gitignore': ['*', '!*.py', '!sub/'].join('\n'),
};

/** Every file of the fixture (directories follow from their paths). */
const files = [
  'app.log',
  'important.log',
  'src/app.log',
  'src/deeper/debug.log',
  'root-only.txt',
  'src/root-only.txt',
  'build/out.js',
  'src/build/out.js',
  'build.js',
  'docs/readme.md',
  'docs/keep.md',
  'docs/sub/guide.md',
  'docs/notes.txt',
  'secret1.txt',
  'secret12.txt',
  'secret.txt',
  'tmp3.txt',
  'tmpx.txt',
  'dataa.csv',
  'datab.csv',
  'cache/x.js',
  'src/cache/y.js',
  'src/cache/deep/z.js',
  'cachefile.js',
  'deep/gen',
  'deep/a/b/gen',
  'deep/gen2',
  '#hash.txt',
  '!bang.txt',
  'trailing.txt',
  'vendor/lib.js',
  'src/vendor/lib.js',
  'vendor.js',
  'x.tmp/file.js',
  'y.tmp',
  'a/b/c.txt',
  'x/a/b/c.txt',
  'Caps.txt',
  'caps.txt',
  'CAPS.txt',
  'only-dir/file.js',
  'src/only-dir',
  'nested/a.js',
  'nested/keep/b.js',
  'xa/y',
  'xa/z/y',
  'x/y',
  'src/a.gen.ts',
  'src/keep.gen.ts',
  'src/deeper/b.gen.ts',
  'src/local.ts',
  'src/deeper/local.ts',
  'src/sub/s.ts',
  'src/deeper/sub/t.ts',
  'src/deeper/override.ts',
  'src/override.ts',
  'pkg/mod.py',
  'pkg/readme.txt',
  'pkg/sub/inner.py',
  'pkg/sub/inner.txt',
  'pkg/other/x.py',
  'plain.ts',
];

let dir: string;

async function build(root: string, extra: Record<string, string> = {}): Promise<void> {
  for (const f of files) {
    await mkdir(dirname(join(root, f)), { recursive: true });
    await writeFile(join(root, f), 'x\n');
  }
  for (const [f, content] of Object.entries({ ...gitignores, ...extra })) {
    await mkdir(dirname(join(root, f)), { recursive: true });
    await writeFile(join(root, f), `${content}\n`);
  }
}

/** Our verdict for one file: excluded itself or below an excluded directory, as a walk decides. */
async function oursFor(root: string, paths: readonly string[]): Promise<Set<string>> {
  const matcher = new IgnoreMatcher();
  const load = async (d: string) => {
    const read = (n: string) => readFile(join(root, d, n), 'utf8').catch(() => undefined);
    matcher.enter(d, { gitignore: await read('.gitignore'), parleyignore: await read('.parleyignore') });
  };
  const entered = new Set<string>();
  const ignored = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    let excluded = false;
    for (let i = 0; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!entered.has(d)) {
        entered.add(d);
        await load(d);
      }
      const here = parts.slice(0, i + 1).join('/');
      if (matcher.ignored(here, i < parts.length - 1)) {
        excluded = true;
        break;
      }
    }
    if (excluded) ignored.add(p);
  }
  return ignored;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-ignore-'));
  await build(dir);
  execFileSync('git', ['init', '-q'], { cwd: dir });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('.gitignore semantics, checked against git check-ignore', () => {
  it('agrees with git on every path of the fixture', async () => {
    expect(files.length).toBeGreaterThanOrEqual(50);
    let out = '';
    try {
      out = execFileSync('git', ['check-ignore', '--no-index', '--stdin'], { cwd: dir, input: files.join('\n') }).toString();
    } catch (err) {
      // Exit 1 means "nothing ignored"; the fixture always has ignored paths.
      throw new Error(`git check-ignore failed: ${String(err)}`);
    }
    const git = new Set(out.split('\n').filter(Boolean));
    const ours = await oursFor(dir, files);
    const disagreements = files
      .filter((f) => git.has(f) !== ours.has(f))
      .map((f) => `${f}: git ${git.has(f) ? 'ignores' : 'keeps'}, we ${ours.has(f) ? 'ignore' : 'keep'}`);
    expect(disagreements).toEqual([]);
    // The fixture exercises both outcomes, many times.
    expect(git.size).toBeGreaterThan(20);
    expect(files.length - git.size).toBeGreaterThan(15);
  });
});

describe('.parleyignore overrides .gitignore both ways', () => {
  it('re-includes what .gitignore excludes, and excludes what it keeps, at any depth', async () => {
    const root = await mkdtemp(join(tmpdir(), 'parley-pignore-'));
    try {
      await build(root, {
        '.parleyignore': ['!app.log', '!build/', 'plain.ts', 'src/**/keep.gen.ts'].join('\n'),
        'src/deeper/.parleyignore': ['debug.log'].join('\n'),
      });
      const ours = await oursFor(root, files);
      // Re-included: a file excluded by a pattern, and a whole excluded directory.
      expect(ours.has('app.log')).toBe(false);
      expect(ours.has('build/out.js')).toBe(false);
      expect(ours.has('src/build/out.js')).toBe(false);
      // Excluded although .gitignore keeps them (the second even re-includes it explicitly).
      expect(ours.has('plain.ts')).toBe(true);
      expect(ours.has('src/keep.gen.ts')).toBe(true);
      // A nested .parleyignore beats a deeper .gitignore's negation.
      expect(ours.has('src/deeper/debug.log')).toBe(true);
      // Untouched decisions stay git's.
      expect(ours.has('important.log')).toBe(false);
      expect(ours.has('vendor/lib.js')).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('the tree scan', () => {
  it('skips and counts ignored, unsupported, binary, generated, oversized files and links', async () => {
    const root = await mkdtemp(join(tmpdir(), 'parley-scan-'));
    try {
      const write = async (p: string, c: string | Buffer) => {
        await mkdir(dirname(join(root, p)), { recursive: true });
        await writeFile(join(root, p), c);
      };
      await write('.gitignore', 'ignored/\n');
      await write('ok.ts', 'export const a = 1;\n');
      await write('ignored/x.ts', 'export const b = 1;\n');
      await write('notes.md', '# hi\n');
      await write('blob.js', Buffer.from([0x66, 0x00, 0x01, 0x02]));
      await write('gen.ts', '// Code generated by protoc. DO NOT EDIT.\nexport const c = 1;\n');
      await write('app.min.js', 'var a=1;\n');
      await write('minified.js', `var x=${'1+'.repeat(5000)}1;\n`);
      await write('big.py', `# big\n${'x = 1\n'.repeat(50_000)}`);
      await symlink('/etc/passwd', join(root, 'escape.ts'));
      await mkdir(join(root, 'outside'));
      await symlink('/etc', join(root, 'linkdir'));
      const scan = await scanTree(root, { maxFileBytes: 100_000, maxFiles: 1000 });
      expect(scan.files.map((f) => f.path)).toEqual(['ok.ts']);
      expect(scan.skipped).toEqual({ ignored: 1, unsupported: 1, binary: 1, generated: 3, too_large: 1, symlink: 2 });
      expect(scan.files[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(await readdir(root)).toContain('escape.ts');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
