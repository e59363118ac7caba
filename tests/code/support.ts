/**
 * Shared fixtures for the code and vector suites: a stack whose LanceDB
 * folder, uploaded trees and path roots are private temporary folders, a
 * small tar writer (so tests can craft the archives a careful client would
 * never send), and helpers to upload and index a tree.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startStack, type Stack, type TestUser } from '../harness.ts';

export interface CodeStack extends Stack {
  dirs: { root: string; lancedb: string; code: string; roots: string };
  cleanup(): Promise<void>;
}

export async function startCodeStack(opts: { workers?: boolean; env?: Record<string, string> } = {}): Promise<CodeStack> {
  const root = await mkdtemp(join(tmpdir(), 'parley-code-'));
  const dirs = { root, lancedb: join(root, 'lancedb'), code: join(root, 'code'), roots: join(root, 'roots') };
  await mkdir(dirs.roots, { recursive: true });
  const stack = await startStack({
    workers: opts.workers ?? true,
    env: {
      PARLEY_LANCEDB_URI: dirs.lancedb,
      PARLEY_CODE_DIR: dirs.code,
      PARLEY_CODE_ROOTS: dirs.roots,
      PARLEY_LANCEDB_VERSION_RETENTION_S: '0',
      ...opts.env,
    },
  });
  return {
    ...stack,
    dirs,
    async cleanup() {
      await stack.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface TarEntry {
  name: string;
  content?: string | Buffer;
  /** '0' file (default), '5' directory, '2' symlink, '1' hard link, '3' character device. */
  type?: '0' | '1' | '2' | '3' | '5';
  linkname?: string;
  /** Declared size, when it must differ from the content's (a lying header). */
  size?: number;
}

function header(name: string, size: number, type: string, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write(linkname.slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** A ustar archive of `entries`, gzipped. Long names (over 100 bytes) get a pax header. */
export function tarGz(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.content === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    if (Buffer.byteLength(e.name) > 100) {
      const rec = ` path=${e.name}\n`;
      let len = rec.length + 2;
      while (`${len}${rec}`.length !== len) len = `${len}${rec}`.length;
      const pax = Buffer.from(`${len}${rec}`);
      parts.push(header('PaxHeader', pax.length, 'x'), pax, Buffer.alloc((512 - (pax.length % 512)) % 512));
    }
    parts.push(header(e.name, e.size ?? data.length, e.type ?? '0', e.linkname));
    parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

export function treeArchive(files: Record<string, string>): Buffer {
  return tarGz(Object.entries(files).map(([name, content]) => ({ name, content })));
}

export async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
}

export async function createRepo(stack: Stack, user: TestUser, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await stack.request('POST', '/v1/code/repositories', { user, body: { name, source: { type: 'archive' }, ...extra } });
  if (r.status !== 201) throw new Error(`create repository answered ${r.status}: ${r.text}`);
  return r.json.id as string;
}

export async function upload(stack: Stack, user: TestUser, id: string, body: Buffer, contentType = 'application/gzip') {
  const res = await fetch(`${stack.base}/v1/code/repositories/${id}/archive`, { method: 'PUT', headers: { ...user.auth, 'content-type': contentType }, body: new Uint8Array(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

/** Submits an index job and waits for it to end; returns the job record. */
export async function indexRepo(stack: Stack, user: TestUser, id: string, timeoutMs = 600_000): Promise<any> {
  const r = await stack.request('POST', `/v1/code/repositories/${id}/index`, { user });
  if (r.status !== 202) throw new Error(`index answered ${r.status}: ${r.text}`);
  return stack.waitForJob(r.json.id, user, timeoutMs);
}

/** A small real-looking project in TypeScript, JavaScript and Python. */
export function sampleProject(): Record<string, string> {
  return {
    'src/math/vector.ts': [
      '/** A point in the plane. */',
      'export interface Point { x: number; y: number }',
      '',
      '/** Euclidean distance between two points. */',
      'export function distance(a: Point, b: Point): number {',
      '  return Math.hypot(a.x - b.x, a.y - b.y);',
      '}',
      '',
      '/** Adds two vectors component by component. */',
      'export const addVectors = (a: Point, b: Point): Point => ({ x: a.x + b.x, y: a.y + b.y });',
      '',
    ].join('\n'),
    'src/http/client.ts': [
      "import { request } from 'node:https';",
      '',
      '/** Retries a failing HTTP call with exponential backoff. */',
      'export class RetryingClient {',
      '  constructor(private readonly attempts: number) {}',
      '',
      '  /** Parses the HTTP response body as JSON, throwing on malformed input. */',
      '  parseHttpResponse(raw: string): unknown {',
      '    return JSON.parse(raw);',
      '  }',
      '',
      '  async fetchWithRetry(url: string): Promise<string> {',
      '    let last: unknown;',
      '    for (let i = 0; i < this.attempts; i++) {',
      '      try {',
      '        return await new Promise((resolve, reject) => request(url, (res) => resolve(String(res.statusCode))).on("error", reject).end());',
      '      } catch (err) {',
      '        last = err;',
      '        await new Promise((r) => setTimeout(r, 2 ** i * 100));',
      '      }',
      '    }',
      '    throw last;',
      '  }',
      '}',
      '',
    ].join('\n'),
    'lib/strings.js': [
      '/** Turns a title into a URL slug: lower case, dashes between words. */',
      'function slugify(title) {',
      "  return title.toLowerCase().trim().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');",
      '}',
      '',
      '/** Reverses the characters of a string. */',
      'function reverseString(s) {',
      "  return s.split('').reverse().join('');",
      '}',
      '',
      'module.exports = { slugify, reverseString };',
      '',
    ].join('\n'),
    'tools/inventory.py': [
      'import json',
      'from collections import Counter',
      '',
      '',
      'class Inventory:',
      '    """Keeps count of items in a warehouse."""',
      '',
      '    def __init__(self):',
      '        self.items = Counter()',
      '',
      '    def add_item(self, name, quantity=1):',
      '        """Add a quantity of an item to the stock."""',
      '        self.items[name] += quantity',
      '',
      '    def to_json(self):',
      '        """Serialize the inventory to a JSON string."""',
      '        return json.dumps(dict(self.items))',
      '',
      '',
      'def parse_csv_line(line):',
      '    """Split one line of comma separated values into fields."""',
      "    return [field.strip() for field in line.split(',')]",
      '',
    ].join('\n'),
    'README.md': '# sample\n',
    '.gitignore': 'dist/\n*.log\n',
    'dist/bundle.js': 'function ignoredBecauseBuilt() { return 1 }\n',
    'debug.log': 'noise\n',
  };
}
