/**
 * `npm run web:build`: builds the arena page (web/) into web/dist with Vite,
 * unless web/dist was built from exactly the current sources: a SHA-256 of
 * web/, sdk/, shared/ and package-lock.json is kept in web/dist/.build-hash,
 * so `npm start` and the browser tests pay the build only after a change.
 * `--force` rebuilds anyway.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = join(root, 'web', 'dist');
const stamp = join(dist, '.build-hash');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === 'node_modules' || p === dist) continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else yield p;
  }
}

export function sourceHash(): string {
  const h = createHash('sha256');
  for (const dir of ['web', 'sdk', 'shared'])
    for (const f of sources(join(root, dir))) h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  h.update(readFileSync(join(root, 'package-lock.json')));
  return h.digest('hex');
}

/** Builds unless the current build matches the sources; returns what it did. */
export async function ensureWebBuild(opts: { force?: boolean } = {}): Promise<'built' | 'up to date'> {
  const hash = sourceHash();
  if (!opts.force && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash && existsSync(join(dist, 'index.html'))) return 'up to date';
  await build({ configFile: join(root, 'web', 'vite.config.ts') });
  writeFileSync(stamp, hash);
  return 'built';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = Date.now();
  const outcome = await ensureWebBuild({ force: process.argv.includes('--force') });
  process.stderr.write(`[web] arena page ${outcome} (${((Date.now() - t0) / 1000).toFixed(1)}s): web/dist\n`);
}
