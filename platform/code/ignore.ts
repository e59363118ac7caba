/**
 * Ignore rules with `.gitignore` semantics (gitignore(5)), plus
 * `.parleyignore` files that override them both ways.
 *
 * Patterns: blank lines and `#` comments are skipped; `\#`, `\!` and `\ `
 * escape; trailing unescaped spaces are dropped; `!` negates; a trailing `/`
 * matches directories only; a pattern with a `/` at its start or middle is
 * anchored to the directory of the file that holds it, otherwise it matches
 * a name at any depth below it; `*` and `?` never match `/`; `[...]` is a
 * bracket expression (`!` or `^` negates, ranges, `[:alpha:]` classes);
 * `**` as a whole path component matches any number of directories (leading
 * `**/ `, inner `; /**​/`, trailing `/**`), and elsewhere acts as `*`.
 *
 * Precedence: the rules of every `.gitignore` from the root down to the
 * path's directory, in that order (deeper files win), then likewise every
 * `.parleyignore`; within all of them the last rule that matches decides.
 * So a `.parleyignore` can re-include what a `.gitignore` excludes, or
 * exclude more. As in git, nothing inside an excluded directory can be
 * re-included: the walk never enters it. `.git` is always excluded.
 */

export interface IgnoreRule {
  /** Directory of the file holding the rule, relative to the root, '' for the root; no trailing slash. */
  base: string;
  negated: boolean;
  dirOnly: boolean;
  /** True: matched against the path relative to `base`; false: against the last path component. */
  anchored: boolean;
  regex: RegExp;
  /** The line as written, for explanations. */
  source: string;
}

const posixClasses: Record<string, string> = {
  alnum: 'A-Za-z0-9',
  alpha: 'A-Za-z',
  blank: ' \\t',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '\\x21-\\x7e',
  lower: 'a-z',
  print: '\\x20-\\x7e',
  punct: '!-\\/:-@\\[-`{-~',
  space: ' \\t\\n\\r\\f\\v',
  upper: 'A-Z',
  xdigit: '0-9A-Fa-f',
};

const escapeRegex = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

/**
 * A bracket expression starting at `pattern[i]` (the `[`): its regex and the
 * index after it, or undefined when it does not close (then `[` is literal).
 */
function bracket(pattern: string, i: number): { re: string; next: number } | undefined {
  let j = i + 1;
  let negate = false;
  if (pattern[j] === '!' || pattern[j] === '^') {
    negate = true;
    j++;
  }
  let body = '';
  let first = true;
  while (j < pattern.length) {
    const c = pattern[j]!;
    if (c === ']' && !first) {
      // `*` and `?` never match '/', and neither does a bracket expression.
      return { re: negate ? `[^/${body}]` : `(?!/)[${body}]`, next: j + 1 };
    }
    first = false;
    if (c === '[' && pattern[j + 1] === ':') {
      const end = pattern.indexOf(':]', j + 2);
      const cls = end > 0 ? posixClasses[pattern.slice(j + 2, end)] : undefined;
      if (cls !== undefined) {
        body += cls;
        j = end + 2;
        continue;
      }
    }
    if (c === '\\' && j + 1 < pattern.length) {
      body += escapeRegex(pattern[j + 1]!);
      j += 2;
      continue;
    }
    if (pattern[j + 1] === '-' && pattern[j + 2] !== undefined && pattern[j + 2] !== ']') {
      let hi = pattern[j + 2]!;
      let skip = 3;
      if (hi === '\\' && pattern[j + 3] !== undefined) {
        hi = pattern[j + 3]!;
        skip = 4;
      }
      if (hi >= c) body += `${escapeRegex(c)}-${escapeRegex(hi)}`;
      j += skip;
      continue;
    }
    body += escapeRegex(c);
    j++;
  }
  return undefined;
}

/** A gitignore glob (already stripped of `!`, trailing `/` and a leading `/`) as an anchored regex. */
function globToRegex(glob: string): RegExp {
  let re = '';
  let i = 0;
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '*') {
      let j = i;
      while (glob[j] === '*') j++;
      const stars = j - i;
      const atStart = i === 0 || glob[i - 1] === '/';
      const atEnd = j === glob.length || glob[j] === '/';
      if (stars >= 2 && atStart && atEnd) {
        if (j === glob.length) {
          // `**` at the end (or alone): everything, at any depth.
          re += '.*';
          i = j;
        } else {
          // `**/`: zero or more directories.
          re += '(?:.*/)?';
          i = j + 1;
        }
        continue;
      }
      re += '[^/]*';
      i = j;
      continue;
    }
    if (c === '?') {
      re += '[^/]';
      i++;
      continue;
    }
    if (c === '[') {
      const b = bracket(glob, i);
      if (b) {
        re += b.re;
        i = b.next;
        continue;
      }
      re += '\\[';
      i++;
      continue;
    }
    if (c === '\\' && i + 1 < glob.length) {
      re += escapeRegex(glob[i + 1]!);
      i += 2;
      continue;
    }
    re += escapeRegex(c);
    i++;
  }
  return new RegExp(`^${re}$`);
}

/** The rules of one ignore file whose directory is `base` ('' for the root). */
export function parseIgnoreFile(content: string, base: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of content.split(/\r?\n/)) {
    let line = raw;
    if (!line || line.startsWith('#')) continue;
    // Trailing spaces go unless escaped with a backslash.
    let end = line.length;
    while (end > 0 && line[end - 1] === ' ' && line[end - 2] !== '\\') end--;
    line = line.slice(0, end);
    if (!line) continue;
    let negated = false;
    if (line.startsWith('!')) {
      negated = true;
      line = line.slice(1);
    } else if (line.startsWith('\\!') || line.startsWith('\\#')) {
      line = line.slice(1);
    }
    let dirOnly = false;
    if (line.endsWith('/') && !line.endsWith('\\/')) {
      dirOnly = true;
      line = line.replace(/\/+$/, '');
    }
    if (!line) continue;
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    if (!line) continue;
    rules.push({ base, negated, dirOnly, anchored, regex: globToRegex(line), source: raw });
  }
  return rules;
}

export type IgnoreLayer = 'gitignore' | 'parleyignore';

/**
 * The decision for one path. `rulesFor(dir)` yields the rules that apply in
 * `dir` in precedence order (see the file comment).
 */
export function matchRules(rules: readonly IgnoreRule[], path: string, isDir: boolean): IgnoreRule | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  for (let i = rules.length - 1; i >= 0; i--) {
    const r = rules[i]!;
    if (r.dirOnly && !isDir) continue;
    let subject: string;
    if (r.base) {
      if (!path.startsWith(`${r.base}/`)) continue;
      subject = path.slice(r.base.length + 1);
    } else subject = path;
    if (r.anchored ? r.regex.test(subject) : r.regex.test(name)) return r;
  }
  return undefined;
}

/**
 * Ignore state while walking a tree top-down. Call `enter(dir, files)` with
 * each directory's ignore files' contents before asking about its entries.
 */
export class IgnoreMatcher {
  private readonly git = new Map<string, IgnoreRule[]>();
  private readonly parley = new Map<string, IgnoreRule[]>();

  /** Rules from outside the tree (git's info/exclude), lowest precedence. */
  constructor(private readonly globalRules: readonly IgnoreRule[] = []) {}

  enter(dir: string, files: { gitignore?: string; parleyignore?: string }): void {
    if (files.gitignore !== undefined) this.git.set(dir, parseIgnoreFile(files.gitignore, dir));
    if (files.parleyignore !== undefined) this.parley.set(dir, parseIgnoreFile(files.parleyignore, dir));
  }

  /** The rules that apply to entries of `dir`, lowest precedence first. */
  private rulesFor(dir: string): IgnoreRule[] {
    const dirs = [''];
    if (dir) {
      const parts = dir.split('/');
      for (let i = 1; i <= parts.length; i++) dirs.push(parts.slice(0, i).join('/'));
    }
    return [...this.globalRules, ...dirs.flatMap((d) => this.git.get(d) ?? []), ...dirs.flatMap((d) => this.parley.get(d) ?? [])];
  }

  /** Whether the entry `path` (relative, posix) is excluded; its parent directories are assumed not to be. */
  ignored(path: string, isDir: boolean): boolean {
    if (path === '.git' || path.endsWith('/.git')) return true;
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const rule = matchRules(this.rulesFor(dir), path, isDir);
    return rule !== undefined && !rule.negated;
  }

  /** The deciding rule for `path` (for explanations), undefined when none matches. */
  explain(path: string, isDir: boolean): IgnoreRule | undefined {
    const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    return matchRules(this.rulesFor(dir), path, isDir);
  }
}
