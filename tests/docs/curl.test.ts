/**
 * Every `curl` in README.md and docs/*.md, run against a live API, so the
 * docs cannot drift from it.
 *
 * For each document, the fenced `bash` blocks that call curl run in order in
 * one bash session, in a folder whose `.data/admin.env` names a fresh admin
 * (as `npm start` leaves it), with `$TOKEN` and `$ID` (a finished chat job)
 * already set for pages that say they come from docs/api.md. A `curl`
 * function in front of the real one points `localhost:3000` at the test's
 * API and dumps each answer's headers, so the test sees every call's status:
 * it must be 2xx/3xx, or the status the line names with `# → NNN`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack, type TestUser } from '../harness.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Command {
  text: string;
  expect?: number;
}

/** The bash blocks that call curl, and the curl commands in them (logical lines, in order). */
function extract(markdown: string): { script: string; commands: Command[] } {
  const blocks = [...markdown.matchAll(/^```(bash|sh)\n([\s\S]*?)^```/gm)].map((m) => m[2]!).filter((b) => /\bcurl\b/.test(b));
  const commands: Command[] = [];
  for (const block of blocks) {
    const logical = block.replace(/\\\n/g, ' ').split('\n');
    for (const line of logical) {
      if (!/\bcurl\b/.test(line) || /^\s*#/.test(line)) continue;
      const code = /#\s*→\s*(\d{3})/.exec(line)?.[1];
      commands.push({ text: line.trim(), expect: code ? Number(code) : undefined });
    }
  }
  return { script: blocks.join('\n'), commands };
}

const documents = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
  .map((path) => ({ path, ...extract(readFileSync(join(repoRoot, path), 'utf8')) }))
  .filter((d) => d.commands.length > 0);

let stack: Stack;
let admin: TestUser;
let jobId: string;
const dirs: string[] = [];

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.user('admin');
  const submitted = await stack.request('POST', '/v1/jobs', {
    user: admin,
    body: { kind: 'llm.chat', input: { messages: [{ role: 'user', content: 'Say hi.' }], options: { num_predict: 8 } } },
  });
  jobId = submitted.json.id;
  await stack.waitForJob(jobId, admin);
});

afterAll(async () => {
  await stack?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const prelude = `
curl() {
  local args=() a
  for a in "$@"; do args+=("\${a//localhost:3000/$PARLEY_DOCS_BASE}"); done
  # Named by the time it started, in nanoseconds: calls in $(...) subshells keep their order too.
  command curl --max-time 120 -D "$PARLEY_DOCS_HEADERS/$(date +%s%N)" "\${args[@]}"
}
`;

describe('the documented curl commands', () => {
  it('finds the documents that have them', () => {
    expect(documents.map((d) => d.path)).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/streaming.md']));
  });

  for (const doc of documents) {
    it(`${doc.path}: each of its ${doc.commands.length} curl commands answers as documented`, { timeout: 600_000 }, async () => {
      const cwd = mkdtempSync(join(tmpdir(), 'parley-docs-'));
      dirs.push(cwd);
      const headers = join(cwd, 'headers');
      mkdirSync(join(cwd, '.data'), { recursive: true });
      mkdirSync(headers);
      writeFileSync(join(cwd, '.data', 'admin.env'), `PARLEY_BOOTSTRAP_ADMIN_USER=${admin.username}\nPARLEY_BOOTSTRAP_ADMIN_PASSWORD=${admin.password}\n`);
      // Asynchronously: the API under test runs in this process and must keep answering.
      const run = await bash(`${prelude}\n${doc.script}`, cwd, {
        PATH: process.env.PATH,
        HOME: cwd,
        PARLEY_DOCS_BASE: stack.base.replace(/^http:\/\//, ''),
        PARLEY_DOCS_HEADERS: headers,
        // For pages that start from docs/api.md's variables.
        TOKEN: admin.token,
        ID: jobId,
        // As after `set -a; . .data/admin.env; set +a`, for pages that assume it.
        PARLEY_BOOTSTRAP_ADMIN_USER: admin.username,
        PARLEY_BOOTSTRAP_ADMIN_PASSWORD: admin.password,
      });
      const statuses = readdirSync(headers)
        .sort()
        .map((f) => {
          const lines = readFileSync(join(headers, f), 'utf8')
            .split(/\r?\n/)
            .filter((l) => /^HTTP\/\S+ \d{3}/.test(l));
          return Number(/^HTTP\/\S+ (\d{3})/.exec(lines.at(-1) ?? '')?.[1] ?? 0);
        });
      const report = `${doc.path}\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-2000)}\nstatuses: ${statuses.join(' ')}`;
      expect(statuses, report).toHaveLength(doc.commands.length);
      doc.commands.forEach((c, i) => {
        const status = statuses[i]!;
        if (c.expect !== undefined) expect(status, `${c.text}\n${report}`).toBe(c.expect);
        else expect(status >= 200 && status < 400, `${c.text} answered ${status}\n${report}`).toBe(true);
      });
    });
  }
});
