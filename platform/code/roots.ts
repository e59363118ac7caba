/**
 * Where a repository's tree is: an uploaded archive's folder under the
 * configured code directory, or, for `path` sources, a folder that must lie
 * inside one of PARLEY_CODE_ROOTS once every symbolic link is resolved (a
 * link cannot lead a repository out of its root).
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import type { RepositorySource } from '../../shared/index.ts';

export function archiveTree(codeDir: string, repositoryId: string): string {
  return join(codeDir, 'repos', repositoryId, 'tree');
}

/** Where uploads unpack before they become a tree, and old trees wait to be removed: beside `repos`, on the same filesystem. */
export function archiveStaging(codeDir: string): string {
  return join(codeDir, '.staging');
}

export class SourcePathError extends Error {
  constructor(
    message: string,
    readonly reason: 'not_absolute' | 'outside_roots' | 'missing' | 'no_roots',
  ) {
    super(message);
    this.name = 'SourcePathError';
  }
}

/** The real path of a `path` source, checked against the roots. */
export async function resolveSourcePath(path: string, roots: readonly string[]): Promise<string> {
  if (!roots.length) throw new SourcePathError('path sources are disabled: PARLEY_CODE_ROOTS names no folder', 'no_roots');
  if (!isAbsolute(path)) throw new SourcePathError(`"${path}" is not an absolute path`, 'not_absolute');
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new SourcePathError(`"${path}" does not exist on this machine`, 'missing');
  }
  for (const root of roots) {
    const r = await realpath(root).catch(() => undefined);
    if (r && (real === r || real.startsWith(r.endsWith(sep) ? r : r + sep))) return real;
  }
  throw new SourcePathError(`"${path}" is not inside any of PARLEY_CODE_ROOTS`, 'outside_roots');
}

export async function repositoryTree(source: RepositorySource, repositoryId: string, opts: { codeDir: string; roots: readonly string[] }): Promise<string> {
  return source.type === 'archive' ? archiveTree(opts.codeDir, repositoryId) : resolveSourcePath(source.path, opts.roots);
}
