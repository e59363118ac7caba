/**
 * Uploads that try to escape or exhaust: zip-slip paths, links out of the
 * tree, size and file-count bombs, bodies that are not archives. Each gets a
 * clear 4xx, nothing lands outside the repository's folder, and the tree
 * uploaded before stays as it was. Path sources are for operators, and only
 * under the configured roots.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveStaging, archiveTree, sweepArchiveStaging } from '../../platform/code/index.ts';
import type { TestUser } from '../harness.ts';
import { createRepo, indexRepo, startCodeStack, tarGz, treeArchive, upload, writeTree, type CodeStack } from './support.ts';

let stack: CodeStack;
let alice: TestUser;
let repo: string;

beforeAll(async () => {
  stack = await startCodeStack({
    env: {
      PARLEY_CODE_ARCHIVE_MAX_BYTES: String(200 * 1024),
      PARLEY_CODE_ARCHIVE_MAX_UNPACKED_BYTES: String(1024 * 1024),
      PARLEY_CODE_ARCHIVE_MAX_FILES: '100',
    },
  });
  alice = await stack.user('member');
  repo = await createRepo(stack, alice, 'target');
  expect((await upload(stack, alice, repo, treeArchive({ 'src/good.ts': 'export const good = 1;\n' }))).status).toBe(200);
});
afterAll(() => stack?.cleanup());

/** Every file under the stack's temporary root, so a stray write anywhere in it shows. */
async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

async function expectRefused(
  body: Buffer,
  status: number,
  code: string,
  reason?: string,
  as: { contentType?: string | null; headers?: Record<string, string> } = {},
) {
  const before = await allFiles(stack.dirs.code);
  const r = await upload(stack, alice, repo, body, as.contentType === undefined ? 'application/gzip' : as.contentType, as.headers);
  expect(r.status, r.text).toBe(status);
  expect(r.json.code).toBe(code);
  if (reason) expect(r.json.reason).toBe(reason);
  expect(r.json.detail).toBeTruthy();
  // Nothing new anywhere, and the previous upload is intact.
  expect(await allFiles(stack.dirs.code)).toEqual(before);
  expect(await readFile(join(archiveTree(stack.dirs.code, repo), 'src/good.ts'), 'utf8')).toBe('export const good = 1;\n');
  return r.json;
}

describe('unsafe entries', () => {
  it('refuses a path that climbs out with ".." (zip-slip)', async () => {
    const p = await expectRefused(
      tarGz([
        { name: 'ok.ts', content: 'x' },
        { name: '../../evil.ts', content: 'pwned' },
      ]),
      422,
      'ARCHIVE_REJECTED',
      'unsafe_path',
    );
    expect(p.errors[0].path).toBe('archive:../../evil.ts');
    expect(await stat(join(stack.dirs.root, 'evil.ts')).catch(() => null)).toBeNull();
    expect(await stat(join(stack.dirs.code, 'evil.ts')).catch(() => null)).toBeNull();
  });

  it('refuses an absolute path', async () => {
    await expectRefused(tarGz([{ name: '/tmp/parley-absolute.ts', content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
    expect(await stat('/tmp/parley-absolute.ts').catch(() => null)).toBeNull();
  });

  it('refuses a long (pax) name that climbs out', async () => {
    await expectRefused(tarGz([{ name: `${'d/'.repeat(60)}${'../'.repeat(70)}escape.ts`, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
  });

  it('refuses a name with a control character, a name over 255 bytes, and a path over 1024 characters', async () => {
    // A tab passed the upload and then failed every index job of the repository; a long name failed the upload with a 500.
    for (const name of ['src/tab\tname.ts', 'src/a\nb.ts', 'src/c\rd.py']) {
      const p = await expectRefused(tarGz([{ name, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
      expect(p.errors[0].path).toBe(`archive:${name}`);
    }
    await expectRefused(tarGz([{ name: `src/${'a'.repeat(300)}.ts`, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
    await expectRefused(tarGz([{ name: `src/${'é'.repeat(130)}.ts`, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
    await expectRefused(tarGz([{ name: `${'dir/'.repeat(300)}x.ts`, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
  });

  it('refuses a pax record whose length does not match its bytes', async () => {
    // 17 characters but 18 bytes ("é" is two): read by its length, it named a truncated path.
    const record = '17 path=src/é.ts\n';
    expect([record.length, Buffer.byteLength(record)]).toEqual([17, 18]);
    const body = tarGz([
      { name: 'PaxHeader', type: 'x' as never, content: record },
      { name: 'src/x.ts', content: 'x' },
    ]);
    await expectRefused(body, 422, 'ARCHIVE_REJECTED', 'malformed');
  });

  it('refuses symbolic and hard links that point outside the tree', async () => {
    await expectRefused(tarGz([{ name: 'passwd.ts', type: '2', linkname: '/etc/passwd' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_link');
    await expectRefused(tarGz([{ name: 'a/up.ts', type: '2', linkname: '../../outside.ts' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_link');
    await expectRefused(tarGz([{ name: 'hard.ts', type: '1', linkname: '../secret' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_link');
  });

  it('accepts links inside the tree but never creates them', async () => {
    const r = await upload(
      stack,
      alice,
      repo,
      tarGz([
        { name: 'src/good.ts', content: 'export const good = 1;\n' },
        { name: 'src/alias.ts', type: '2', linkname: 'good.ts' },
        { name: 'dev', type: '3' },
      ]),
    );
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ files: 1, skipped: { symlink: 1, special: 1 } });
    expect(await readdir(join(archiveTree(stack.dirs.code, repo), 'src'))).toEqual(['good.ts']);
  });

  it('refuses a file entry below another file', async () => {
    await expectRefused(
      tarGz([
        { name: 'x.ts', content: 'a' },
        { name: 'x.ts/y.ts', content: 'b' },
      ]),
      422,
      'ARCHIVE_REJECTED',
      'unsafe_path',
    );
  });
});

describe('entry names and pax numbers', () => {
  const latin1 = (s: string) => Buffer.from(s, 'latin1');

  it('refuses an entry name that is not UTF-8, naming it with those bytes escaped as \\xNN', async () => {
    // café.py and cafè.py written by a Latin-1 tar: both were decoded to "caf\uFFFD.py", and one silently replaced the other.
    const twins = tarGz([
      { name: latin1('src/café.py'), content: 'a = 1\n' },
      { name: latin1('src/cafè.py'), content: 'b = 2\n' },
    ]);
    const p = await expectRefused(twins, 422, 'ARCHIVE_REJECTED', 'unsafe_path');
    expect(p.errors[0].path).toBe('archive:src/caf\\xe9.py');
    expect(p.detail).toContain('src/caf\\xe9.py');
    // The same bytes as a pax path or a GNU long name.
    const viaPax = await expectRefused(tarGz([{ name: 'x.py', pax: { path: latin1('src/ü.py') }, content: 'x' }]), 422, 'ARCHIVE_REJECTED', 'unsafe_path');
    expect(viaPax.errors[0].path).toBe('archive:src/\\xfc.py');
    const longLink = latin1(`src/${'ß'.repeat(120)}.py`);
    const viaGnu = await expectRefused(
      tarGz([
        { name: '././@LongLink', type: 'L' as never, content: longLink },
        { name: 'cut.py', content: 'x' },
      ]),
      422,
      'ARCHIVE_REJECTED',
      'unsafe_path',
    );
    expect(viaGnu.errors[0].path).toBe(`archive:src/${'\\xdf'.repeat(120)}.py`);
    // A UTF-8 name over 100 bytes whose ustar field (replaced by its pax path) ends inside a character is taken.
    const other = await createRepo(stack, alice, 'utf8-names');
    const long = `ab/${'é'.repeat(60)}.py`;
    expect(Buffer.from(long)[99]).toBe(0xc3);
    const ok = await upload(stack, alice, other, tarGz([{ name: long, content: 'x = 1\n' }]));
    expect(ok.status, ok.text).toBe(200);
    expect(await readFile(join(archiveTree(stack.dirs.code, other), long), 'utf8')).toBe('x = 1\n');
  });

  it('refuses a pax size that is not a plain decimal integer, naming the entry and the key', async () => {
    // 1e1 cut the file to 10 bytes and 0x16 was read as 22; 22.5 and abc were refused as a "header checksum mismatch".
    const content = 'print("twenty-two")\n#\n';
    expect(content.length).toBe(22);
    for (const size of ['1e1', '0x16', '22.5', 'abc', '+22', ' 22', '-1', '']) {
      const p = await expectRefused(tarGz([{ name: 'src/a.py', content, pax: { size } }]), 422, 'ARCHIVE_REJECTED', 'malformed');
      expect(p.errors[0].path, size).toBe('archive:src/a.py');
      expect(p.detail, size).toMatch(/src\/a\.py.*pax.*"size"/);
    }
    const other = await createRepo(stack, alice, 'pax-size');
    const ok = await upload(stack, alice, other, tarGz([{ name: 'src/a.py', content, pax: { size: '22' } }]));
    expect(ok.status, ok.text).toBe(200);
    expect(await readFile(join(archiveTree(stack.dirs.code, other), 'src/a.py'), 'utf8')).toBe(content);
  });

  it('counts a path the archive holds twice once in the receipt; the last entry is the file', async () => {
    const other = await createRepo(stack, alice, 'duplicates');
    const r = await upload(
      stack,
      alice,
      other,
      tarGz([
        { name: 'src/dup.py', content: 'first = 1\n' },
        { name: 'src/other.py', content: 'other = 1\n' },
        { name: 'src/dup.py', content: 'second = 2\n' },
      ]),
    );
    expect(r.status, r.text).toBe(200);
    expect(r.json.files).toBe(2);
    expect(await readFile(join(archiveTree(stack.dirs.code, other), 'src/dup.py'), 'utf8')).toBe('second = 2\n');
    const view = await stack.request('GET', `/v1/code/repositories/${other}`, { user: alice });
    expect(view.json.snapshot.files).toBe(2);
  });
});

describe('bombs and caps', () => {
  it('stops a gzip bomb at the unpacked-size cap', async () => {
    // 64 MB of zeros in one entry compresses to about 64 KB: under the compressed cap, far over the unpacked one.
    const bomb = tarGz([{ name: 'zeros.ts', content: Buffer.alloc(64 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(200 * 1024);
    const p = await expectRefused(bomb, 413, 'PAYLOAD_TOO_LARGE');
    expect(p.detail).toMatch(/unpacks to more than 1048576 bytes/);
  });

  it('refuses more files than allowed', async () => {
    const many = tarGz(Array.from({ length: 101 }, (_, i) => ({ name: `f${i}.ts`, content: `export const v${i} = ${i};\n` })));
    const p = await expectRefused(many, 413, 'PAYLOAD_TOO_LARGE');
    expect(p.detail).toMatch(/more than 100 files/);
  });

  it('refuses a body over the compressed-size cap', async () => {
    const noise = tarGz([{ name: 'noise.ts', content: randomBytes(300 * 1024) }]);
    const p = await expectRefused(noise, 413, 'PAYLOAD_TOO_LARGE');
    expect(p.detail).toMatch(/larger than 204800 bytes/);
  });
});

describe('bodies that are not archives', () => {
  it('refuses a body that is not gzip', async () => {
    await expectRefused(Buffer.from('plain text, not gzip'), 422, 'ARCHIVE_REJECTED', 'malformed');
  });

  it('refuses gzip that is not tar', async () => {
    await expectRefused(gzipSync(Buffer.from('x'.repeat(2000))), 422, 'ARCHIVE_REJECTED', 'malformed');
  });

  it('refuses a truncated archive', async () => {
    const whole = tarGz([{ name: 'cut.ts', content: 'x'.repeat(4000) }]);
    const raw = gzipSync(Buffer.from(whole)); // gzip of gzip: decompresses to a gzip stream, not tar
    await expectRefused(raw, 422, 'ARCHIVE_REJECTED', 'malformed');
    const lying = tarGz([{ name: 'liar.ts', content: 'short', size: 10_000 }]);
    await expectRefused(lying, 422, 'ARCHIVE_REJECTED', 'malformed');
  });

  it('answers 415 to another content type', async () => {
    const r = await upload(stack, alice, repo, treeArchive({ 'a.ts': 'x' }), 'text/plain');
    expect(r.status).toBe(415);
    expect(r.json.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 415 to a content type a body parser takes, before that parser reads the body', async () => {
    // application/json was read by the JSON parser first: 400 MALFORMED_BODY "not valid UTF-8".
    for (const contentType of ['application/json', 'application/vnd.parley+json', 'application/x-www-form-urlencoded', null]) {
      const p = await expectRefused(treeArchive({ 'a.ts': 'x' }), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined, { contentType });
      expect(p.detail, String(contentType)).toMatch(/application\/gzip/);
    }
    // Other routes still parse JSON as before.
    const r = await fetch(`${stack.base}/v1/code/repositories`, {
      method: 'POST',
      headers: { ...alice.auth, 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { code: string }).code).toBe('MALFORMED_BODY');
  });

  it('answers 415 to any Content-Encoding but identity: a .tar.gz is sent as it is', async () => {
    // "bogus" was ignored (200), and gzip was not decoded (422, not a tar archive).
    const archive = treeArchive({ 'a.ts': 'x' });
    for (const [encoding, body] of [
      ['bogus', archive],
      ['gzip', gzipSync(archive)],
      ['GZIP', gzipSync(archive)],
      ['br', archive],
      ['identity, gzip', gzipSync(archive)],
    ] as const) {
      const p = await expectRefused(body, 415, 'UNSUPPORTED_MEDIA_TYPE', undefined, { headers: { 'content-encoding': encoding } });
      expect(p.detail, encoding).toMatch(/as it is/);
    }
    const other = await createRepo(stack, alice, 'identity');
    const ok = await upload(stack, alice, other, archive, 'application/gzip', { 'content-encoding': 'identity' });
    expect(ok.status, ok.text).toBe(200);
  });

  it('refuses an upload to a repository the caller does not own', async () => {
    const bob = await stack.user('member');
    const r = await upload(stack, bob, repo, treeArchive({ 'a.ts': 'x' }));
    expect(r.status).toBe(404);
  });
});

describe('path sources', () => {
  it('are for operators, and only under PARLEY_CODE_ROOTS', async () => {
    const op = await stack.user('operator');
    const inside = join(stack.dirs.roots, 'project');
    await writeTree(inside, { 'main.py': 'def main():\n    """Entry point."""\n    return 0\n' });
    const member = await stack.request('POST', '/v1/code/repositories', { user: alice, body: { name: 'local', source: { type: 'path', path: inside } } });
    expect(member.status).toBe(403);
    const outside = await stack.request('POST', '/v1/code/repositories', { user: op, body: { name: 'etc', source: { type: 'path', path: '/etc' } } });
    expect(outside.status).toBe(400);
    expect(outside.json.errors[0]).toMatchObject({ path: 'source.path' });
    // A link inside a root that leads out of it is followed to its real place, and refused.
    await mkdir(join(stack.dirs.roots, 'links'), { recursive: true });
    await symlink('/etc', join(stack.dirs.roots, 'links', 'etc'));
    const viaLink = await stack.request('POST', '/v1/code/repositories', {
      user: op,
      body: { name: 'via-link', source: { type: 'path', path: join(stack.dirs.roots, 'links', 'etc') } },
    });
    expect(viaLink.status).toBe(400);
    const ok = await stack.request('POST', '/v1/code/repositories', { user: op, body: { name: 'local', source: { type: 'path', path: inside } } });
    expect(ok.status, ok.text).toBe(201);
    const job = await indexRepo(stack, op, ok.json.id);
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.result).toMatchObject({ files: 1 });
  });

  it('fails the index job with a reason when an archive repository has no upload yet', async () => {
    const empty = await createRepo(stack, alice, 'empty');
    const r = await stack.request('POST', `/v1/code/repositories/${empty}/index`, { user: alice });
    expect(r.status).toBe(409);
    expect(r.json.detail).toMatch(/Upload the repository first/);
  });
});

describe('uploads and deletes at once', () => {
  const tree = (n: number) => ({ [`src/v${n}.ts`]: `export const v = ${n};\n`, 'README.md': `version ${n}\n` });

  it('uploads to one repository at once each answer 200; the tree is exactly one of them, and the snapshot names that one', async () => {
    // The swap of the old tree for the new one raced (ENOENT and ENOTEMPTY, a 500 in most rounds of four at once).
    const r = await createRepo(stack, alice, 'concurrent-uploads');
    for (let round = 0; round < 8; round++) {
      const bodies = [0, 1, 2, 3].map((i) => treeArchive(tree(round * 4 + i)));
      const answers = await Promise.all(bodies.map((b) => upload(stack, alice, r, b)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      const files = (await allFiles(archiveTree(stack.dirs.code, r))).map((f) => f.slice(archiveTree(stack.dirs.code, r).length + 1)).sort();
      const winner = [0, 1, 2, 3].find((i) => files.includes(`src/v${round * 4 + i}.ts`)) ?? -1;
      expect(winner).toBeGreaterThanOrEqual(0);
      expect(files).toEqual(['README.md', `src/v${round * 4 + winner}.ts`]);
      const view = await stack.request('GET', `/v1/code/repositories/${r}`, { user: alice });
      expect(view.json.snapshot.sha256).toBe(answers[winner]!.json.sha256);
    }
    // Nothing is left staged or set aside.
    expect(await allFiles(join(stack.dirs.code, '.staging'))).toEqual([]);
  });

  it('a delete racing an upload removes the repository and its folder; neither answers 5xx', async () => {
    for (let round = 0; round < 10; round++) {
      const r = await createRepo(stack, alice, `deleted-${round}`);
      expect((await upload(stack, alice, r, treeArchive(tree(round)))).status).toBe(200);
      const [up, ...deletes] = await Promise.all([
        upload(stack, alice, r, treeArchive(tree(100 + round))),
        ...[0, 1].map(() => stack.request('DELETE', `/v1/code/repositories/${r}`, { user: alice })),
      ]);
      expect([200, 404]).toContain(up.status);
      expect(deletes.map((d) => d.status).sort()).toEqual([204, 404]);
      expect((await stack.request('GET', `/v1/code/repositories/${r}`, { user: alice })).status).toBe(404);
      await expect(stat(join(stack.dirs.code, 'repos', r))).rejects.toMatchObject({ code: 'ENOENT' });
    }
    expect(await allFiles(join(stack.dirs.code, '.staging'))).toEqual([]);
  });
});

describe('the staging folder', () => {
  it('loses what an upload left more than the age given ago, and keeps younger entries', async () => {
    const root = join(archiveStaging(stack.dirs.code), '..', 'sweep-test');
    await mkdir(join(root, 'staging-old', 'src'), { recursive: true });
    await writeFile(join(root, 'staging-old', 'src', 'a.ts'), 'x');
    await mkdir(join(root, 'staging-new'), { recursive: true });
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(root, 'staging-old'), twoHoursAgo, twoHoursAgo);
    expect(await sweepArchiveStaging(root, 3_600_000)).toBe(1);
    expect(await readdir(root)).toEqual(['staging-new']);
    expect(await sweepArchiveStaging(join(root, 'missing'), 0)).toBe(0);
  });
});
