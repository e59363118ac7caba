/**
 * Shared fixtures for the code and vector suites: a stack whose LanceDB
 * folder, uploaded trees and path roots are private temporary folders, a
 * small tar writer (so tests can craft the archives a careful client would
 * never send), and helpers to upload and index a tree.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { QueueName } from '../../shared/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

export { tarGz, treeArchive, type TarEntry } from '../../bench/codebench/tar.ts';

export interface CodeStack extends Stack {
  dirs: { root: string; lancedb: string; code: string; roots: string };
  cleanup(): Promise<void>;
}

export async function startCodeStack(opts: { workers?: boolean | QueueName[]; env?: Record<string, string> } = {}): Promise<CodeStack> {
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

/** `contentType` null sends none; `headers` adds others (Content-Encoding). */
export async function upload(
  stack: Stack,
  user: TestUser,
  id: string,
  body: Buffer,
  contentType: string | null = 'application/gzip',
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${stack.base}/v1/code/repositories/${id}/archive`, {
    method: 'PUT',
    headers: { ...user.auth, ...(contentType === null ? {} : { 'content-type': contentType }), ...headers },
    body: new Uint8Array(body),
  });
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
