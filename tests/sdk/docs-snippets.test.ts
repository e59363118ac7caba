/**
 * Every ```ts and ```tsx snippet of docs/sdk.md compiles against the SDK as
 * users import it (`parley/sdk`, `parley/sdk/react`), with the project's
 * strict compiler options. Each snippet is its own module.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
// Inside the repository, so `parley/sdk` resolves by the package's own exports.
const dir = join(root, 'tests', 'sdk', '.snippets');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('compiles every snippet of docs/sdk.md', () => {
  const doc = readFileSync(join(root, 'docs', 'sdk.md'), 'utf8');
  const snippets = [...doc.matchAll(/```(tsx?)\n([\s\S]*?)```/g)].map((m, i) => ({ file: join(dir, `snippet-${i + 1}.${m[1]}`), code: m[2]! }));
  expect(snippets.length).toBeGreaterThanOrEqual(9);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const s of snippets) writeFileSync(s.file, s.code.includes('import ') || s.code.includes('export ') ? s.code : `${s.code}\nexport {};\n`);

  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const program = ts.createProgram(
    snippets.map((s) => s.file),
    { ...config.options, noEmit: true },
  );
  const problems = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName.replace(`${dir}/`, '')}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  expect(problems).toEqual([]);
});
