/**
 * Unpacking an uploaded `.tar.gz` into a repository's folder, safely.
 *
 * The body streams through gunzip into a small tar reader (ustar, pax `x`
 * headers and GNU long names) that writes regular files into a fresh
 * staging folder; only when the whole archive has passed does the staging
 * folder replace the repository's tree (two renames). Whatever fails, the
 * old tree stays as it was and the staging folder is removed.
 *
 * Refused, with the reason (ArchiveError):
 * - `too_large`: more compressed bytes than allowed, or more unpacked bytes
 *   (a gzip bomb stops at the cap, not at the end of the stream);
 * - `too_many_files`: more file entries than allowed;
 * - `unsafe_path`: an absolute path, a `..` component, a backslash or a NUL
 *   (zip-slip), a path below something that is a file, or a name that is
 *   not UTF-8 (decoded, two such names could become one);
 * - `unsafe_link`: a symbolic or hard link that points outside the tree;
 * - `malformed`: not gzip, or not tar (a pax `size` that is not a plain
 *   decimal number included).
 *
 * Links that stay inside the tree are not created (the index never follows
 * links) and are counted as skipped, as are devices and FIFOs. Nothing is
 * ever written outside the staging folder: every target path is resolved
 * and checked against it, and no link exists there to redirect a write.
 */
import { isUtf8 } from 'node:buffer';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

export type ArchiveErrorCode = 'too_large' | 'too_many_files' | 'unsafe_path' | 'unsafe_link' | 'malformed';

export class ArchiveError extends Error {
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    readonly entry?: string,
  ) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export interface ArchiveLimits {
  /** Compressed bytes. */
  maxBytes: number;
  /** Bytes once unpacked, over all files. */
  maxUnpackedBytes: number;
  /** File entries. */
  maxFiles: number;
}

export interface UnpackResult {
  /** Compressed bytes received. */
  bytes: number;
  /** Distinct file paths (an entry repeated for one path counts once). */
  files: number;
  unpackedBytes: number;
  /** sha256 of the compressed body. */
  sha256: string;
  skipped: Record<string, number>;
}

/** Checks an entry name and returns it normalised (no leading `./`, no trailing `/`). */
export function safeEntryPath(name: string): string {
  if (name.includes('\0')) throw new ArchiveError('unsafe_path', 'an entry name contains a NUL byte', name);
  if (name.includes('\\')) throw new ArchiveError('unsafe_path', `entry "${name}" contains a backslash`, name);
  if (name.startsWith('/')) throw new ArchiveError('unsafe_path', `entry "${name}" is an absolute path`, name);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ArchiveError('unsafe_path', `entry "${name}" climbs out of the tree with ".."`, name);
  // What the index's jobs take as a file name (shared/jobs/code-chunk.ts RelativePath), and what a file system holds:
  // one such name once failed the whole index, and a long one the upload (ENAMETOOLONG, a 500).
  if (/[\x00-\x1f]/.test(name)) throw new ArchiveError('unsafe_path', `entry ${JSON.stringify(name)} contains a control character`, name);
  if (parts.some((p) => Buffer.byteLength(p) > 255)) throw new ArchiveError('unsafe_path', `entry "${name}" has a name longer than 255 bytes`, name);
  const normalised = parts.join('/');
  if (normalised.length > 1024) throw new ArchiveError('unsafe_path', `entry "${name.slice(0, 64)}…" is longer than 1024 characters`, name);
  return normalised;
}

/** Whether a link at `entry` pointing to `target` stays inside the tree. */
export function linkStaysInside(entry: string, target: string, hard: boolean): boolean {
  if (target.startsWith('/') || target.includes('\0')) return false;
  // A hard link's target is a path from the archive root; a symbolic link's is relative to its own directory.
  const base = hard ? [] : entry.split('/').slice(0, -1);
  const parts = [...base];
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) return false;
      parts.pop();
    } else parts.push(p);
  }
  return true;
}

const block = 512;

/** A ustar header's name: the prefix field (ustar only), a slash, the name field. */
function ustarName(header: Buffer): Buffer {
  const name = cbytes(header, 0, 100);
  const prefix = header.toString('ascii', 257, 262) === 'ustar' ? cbytes(header, 345, 155) : Buffer.alloc(0);
  return prefix.length ? Buffer.concat([prefix, Buffer.from('/'), name]) : name;
}

function withoutTrailingNuls(data: Buffer): Buffer {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end);
}

function octal(buf: Buffer, start: number, len: number): number {
  // GNU base-256 for large sizes: high bit of the first byte set.
  if (buf[start]! & 0x80) {
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = buf
    .toString('ascii', start, start + len)
    .replace(/\0.*$/, '')
    .trim();
  if (!s) return 0;
  if (!/^[0-7]+$/.test(s)) throw new ArchiveError('malformed', 'not a tar archive (bad number field)');
  return parseInt(s, 8);
}

/** A NUL-terminated header field's bytes. */
function cbytes(buf: Buffer, start: number, len: number): Buffer {
  const end = buf.indexOf(0, start);
  return buf.subarray(start, end >= 0 && end < start + len ? end : start + len);
}

/**
 * `bytes` as text with what is not UTF-8 written as `\xNN` (and a backslash as `\\`), so that
 * different names never read the same. Each character is the shortest prefix that is UTF-8 on its own.
 */
export function escapeNonUtf8(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length;) {
    const n = [1, 2, 3, 4].find((k) => i + k <= bytes.length && isUtf8(bytes.subarray(i, i + k)));
    if (n === undefined) {
      out += `\\x${bytes[i]!.toString(16).padStart(2, '0')}`;
      i++;
      continue;
    }
    const ch = bytes.toString('utf8', i, i + n);
    out += ch === '\\' ? '\\\\' : ch;
    i += n;
  }
  return out;
}

/**
 * An entry name's bytes as text. A name that is not UTF-8 is refused rather than decoded: the
 * replacement character would make `caf\xe9.py` and `caf\xe8.py` one file, the second silently
 * replacing the first. The refusal names it losslessly (escapeNonUtf8).
 */
function entryName(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const shown = escapeNonUtf8(bytes);
  throw new ArchiveError('unsafe_path', `entry "${shown}" has a name that is not UTF-8`, shown);
}

/**
 * A pax numeric field: a plain decimal integer, as POSIX writes it. `Number()` would also take `1e1`
 * (a file cut to 10 bytes), `0x16` or ` 22`, and read `22.5` or `abc` into a size that desynchronised
 * the reader (refused as a checksum mismatch, far from the cause).
 */
function paxInteger(pax: PaxRecords, key: string, entry: string): number {
  const raw = pax[key]!.toString('utf8');
  if (!/^\d+$/.test(raw))
    throw new ArchiveError('malformed', `entry "${entry}": the pax header's "${key}" is ${JSON.stringify(raw.slice(0, 40))}, not a decimal integer`, entry);
  return Number(raw);
}

function checksumOk(header: Buffer): boolean {
  const stored = octal(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === stored;
}

/** pax records by key, their values as bytes: a `path` is checked as a name (entryName), not decoded blindly. */
type PaxRecords = Record<string, Buffer>;

/** pax extended header records: "<len> <key>=<value>\n". */
function paxRecords(data: Buffer): PaxRecords {
  const out: PaxRecords = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const len = parseInt(data.toString('ascii', i, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    // The length counts the record's bytes, its own digits and the newline included: a record that does not
    // end where it says (a writer that counted characters) would otherwise name a truncated path.
    if (i + len > data.length || data[i + len - 1] !== 0x0a) throw new ArchiveError('malformed', 'a pax header record does not end where its length says');
    const record = data.subarray(space + 1, i + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) out[record.toString('utf8', 0, eq)] = record.subarray(eq + 1);
    i += len;
  }
  return out;
}

/**
 * The tar reader: a Writable fed decompressed bytes. Entries are handled in
 * order; file data goes straight to disk under `stagingDir`.
 */
class TarSink extends Writable {
  private buf: Buffer = Buffer.alloc(0);
  private state: { kind: 'header' } | { kind: 'data'; remaining: number; padding: number; onData: (b: Buffer) => Promise<void>; onEnd: () => Promise<void> } = {
    kind: 'header',
  };
  private pax: PaxRecords = {};
  private longName: Buffer | undefined;
  private longLink: Buffer | undefined;
  private ended = false;
  private zeroBlocks = 0;
  readonly result = { unpackedBytes: 0, skipped: {} as Record<string, number> };
  /** File entries read, for the cap: a path the archive holds twice is written twice. */
  private fileEntries = 0;
  private readonly dirs = new Set<string>(['']);
  private readonly filesWritten = new Set<string>();

  /** Files in the tree: distinct paths, the last entry of a path being the one on disk. */
  get files(): number {
    return this.filesWritten.size;
  }

  constructor(
    private readonly stagingDir: string,
    private readonly limits: ArchiveLimits,
  ) {
    super();
  }

  private skip(reason: string): void {
    this.result.skipped[reason] = (this.result.skipped[reason] ?? 0) + 1;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.drain().then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.state.kind === 'data' || (!this.ended && this.buf.length > 0)) cb(new ArchiveError('malformed', 'the tar archive ends in the middle of an entry'));
    else if (!this.ended && this.fileEntries === 0 && this.zeroBlocks === 0) cb(new ArchiveError('malformed', 'not a tar archive (empty)'));
    else cb();
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.ended) {
        this.buf = Buffer.alloc(0);
        return;
      }
      const st = this.state;
      if (st.kind === 'data') {
        if (st.remaining > 0) {
          if (!this.buf.length) return;
          const take = Math.min(st.remaining, this.buf.length);
          await st.onData(this.buf.subarray(0, take));
          this.buf = this.buf.subarray(take);
          st.remaining -= take;
          if (st.remaining > 0) return;
        }
        if (this.buf.length < st.padding) return;
        this.buf = this.buf.subarray(st.padding);
        this.state = { kind: 'header' };
        await st.onEnd();
        continue;
      }
      if (this.buf.length < block) return;
      const header = this.buf.subarray(0, block);
      this.buf = this.buf.subarray(block);
      if (header.every((b) => b === 0)) {
        // Two zero blocks end the archive.
        if (++this.zeroBlocks >= 2) this.ended = true;
        continue;
      }
      this.zeroBlocks = 0;
      if (!checksumOk(header)) throw new ArchiveError('malformed', 'not a tar archive (header checksum mismatch)');
      await this.entry(header);
    }
  }

  /** Reads an entry's data fully into memory (for pax and GNU long-name entries, which are small). */
  private collect(size: number, done: (data: Buffer) => void): void {
    if (size > 1024 * 1024) throw new ArchiveError('malformed', 'an extended header is larger than 1 MB');
    const parts: Buffer[] = [];
    this.state = {
      kind: 'data',
      remaining: size,
      padding: (block - (size % block)) % block,
      onData: async (b) => void parts.push(Buffer.from(b)),
      onEnd: async () => done(Buffer.concat(parts)),
    };
  }

  private skipData(size: number): void {
    this.state = { kind: 'data', remaining: size, padding: (block - (size % block)) % block, onData: async () => {}, onEnd: async () => {} };
  }

  private async entry(header: Buffer): Promise<void> {
    const type = String.fromCharCode(header[156]!);
    let size = octal(header, 124, 12);
    // Extended headers and long names describe the next entry; their own ustar names are never used
    // (and may be cut inside a character), so only the name an entry ends up with is decoded.
    switch (type) {
      case 'x':
        this.collect(size, (d) => (this.pax = paxRecords(d)));
        return;
      case 'g':
        this.skipData(size);
        return;
      case 'L':
        this.collect(size, (d) => (this.longName = withoutTrailingNuls(d)));
        return;
      case 'K':
        this.collect(size, (d) => (this.longLink = withoutTrailingNuls(d)));
        return;
    }
    const { pax, longName, longLink } = this;
    this.pax = {};
    this.longName = undefined;
    this.longLink = undefined;
    const name = entryName(longName ?? pax.path ?? ustarName(header));
    const linkname = (longLink ?? pax.linkpath ?? cbytes(header, 157, 100)).toString('utf8');
    if (pax.size !== undefined) size = paxInteger(pax, 'size', name);
    const path = safeEntryPath(name);
    switch (type) {
      case '5': {
        if (path) await this.mkdirs(path);
        this.skipData(size);
        return;
      }
      case '1':
      case '2': {
        if (!linkStaysInside(path, linkname, type === '1')) {
          throw new ArchiveError('unsafe_link', `entry "${path}" links to "${linkname}", outside the tree`, path);
        }
        this.skip(type === '2' ? 'symlink' : 'hardlink');
        this.skipData(size);
        return;
      }
      case '0':
      case '\0':
      case '7': {
        if (!path) throw new ArchiveError('unsafe_path', 'a file entry has an empty name');
        if (++this.fileEntries > this.limits.maxFiles) throw new ArchiveError('too_many_files', `the archive has more than ${this.limits.maxFiles} files`);
        if (this.result.unpackedBytes + size > this.limits.maxUnpackedBytes) {
          throw new ArchiveError('too_large', `the archive unpacks to more than ${this.limits.maxUnpackedBytes} bytes`, path);
        }
        this.result.unpackedBytes += size;
        const target = this.target(path);
        await this.mkdirs(path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
        if (this.dirs.has(path)) throw new ArchiveError('unsafe_path', `entry "${path}" is both a directory and a file`, path);
        let fh: FileHandle | undefined = await open(target, 'w', 0o644);
        this.filesWritten.add(path);
        this.state = {
          kind: 'data',
          remaining: size,
          padding: (block - (size % block)) % block,
          onData: async (b) => void (await fh!.write(b)),
          onEnd: async () => {
            await fh?.close();
            fh = undefined;
          },
        };
        if (size === 0) {
          // No data blocks follow: close now.
          await fh.close();
          fh = undefined;
          this.state = { kind: 'header' };
        }
        return;
      }
      default:
        // Devices, FIFOs, contiguous files of other kinds: never created.
        this.skip('special');
        this.skipData(size);
    }
  }

  private target(path: string): string {
    const root = resolve(this.stagingDir);
    const t = resolve(root, path);
    if (!t.startsWith(root + sep)) throw new ArchiveError('unsafe_path', `entry "${path}" resolves outside the tree`, path);
    return t;
  }

  private async mkdirs(dir: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    const parts = dir.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.dirs.has(d)) continue;
      if (this.filesWritten.has(d)) throw new ArchiveError('unsafe_path', `entry "${dir}" lies below "${d}", which is a file`, dir);
      await mkdir(this.target(d), { recursive: true });
      this.dirs.add(d);
    }
  }
}

/** Counts and hashes the compressed bytes, refusing more than `max`. */
function meter(max: number, sink: { bytes: number; hash: ReturnType<typeof createHash> }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sink.bytes += chunk.length;
      if (sink.bytes > max) return cb(new ArchiveError('too_large', `the archive is larger than ${max} bytes`));
      sink.hash.update(chunk);
      cb(null, chunk);
    },
  });
}

/** An archive unpacked and checked, waiting in a staging folder to become a repository's tree. */
export interface StagedArchive {
  result: UnpackResult;
  /**
   * Makes the staged files the tree at `treeDir`: the old tree moves aside and
   * goes. Callers serialise swaps (and deletes) of one tree; see uploadArchive.
   */
  swapInto(treeDir: string): Promise<void>;
  /** Removes the staging folder if it was not swapped in (always safe to call). */
  discard(): Promise<void>;
}

/**
 * Unpacks `body` (a .tar.gz stream) into a fresh staging folder under
 * `stagingRoot` (on the same filesystem as the trees, so the swap is a
 * rename), refusing it on any check. Nothing of a repository's tree is
 * touched until `swapInto`.
 */
export async function stageArchive(body: Readable, stagingRoot: string, limits: ArchiveLimits): Promise<StagedArchive> {
  await mkdir(stagingRoot, { recursive: true });
  const staging = join(stagingRoot, `staging-${randomUUID()}`);
  await mkdir(staging);
  const counted = { bytes: 0, hash: createHash('sha256') };
  const tar = new TarSink(staging, limits);
  try {
    const gunzip = createGunzip();
    let unpacked = 0;
    // A gzip bomb is stopped here, at the cap, before its bytes reach the tar reader.
    const cap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        unpacked += chunk.length;
        if (unpacked > limits.maxUnpackedBytes + 64 * 1024)
          return cb(new ArchiveError('too_large', `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`));
        cb(null, chunk);
      },
    });
    await pipeline(body, meter(limits.maxBytes, counted), gunzip, cap, tar);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (err instanceof ArchiveError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || code === 'ERR_STREAM_PREMATURE_CLOSE')
      throw new ArchiveError('malformed', 'the body is not a complete gzip stream');
    throw err;
  }
  let swapped = false;
  return {
    result: {
      bytes: counted.bytes,
      files: tar.files,
      unpackedBytes: tar.result.unpackedBytes,
      sha256: counted.hash.digest('hex'),
      skipped: tar.result.skipped,
    },
    async swapInto(treeDir) {
      await mkdir(dirname(treeDir), { recursive: true });
      const old = join(stagingRoot, `old-${randomUUID()}`);
      const hadTree = await moveAside(treeDir, old);
      await rename(staging, treeDir);
      swapped = true;
      if (hadTree) await rm(old, { recursive: true, force: true });
    },
    async discard() {
      if (!swapped) await rm(staging, { recursive: true, force: true });
    },
  };
}

/** Renames `from` to `to`; false when there was nothing at `from`. */
export async function moveAside(from: string, to: string): Promise<boolean> {
  return rename(from, to).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/**
 * Removes what uploads left in the staging folder longer than `olderThanMs` ago: an upload's files when
 * its process died mid-upload, an old tree a swap had set aside. Younger entries may be an upload under
 * way (on this or another process sharing the folder) and stay. Answers how many went.
 */
export async function sweepArchiveStaging(stagingRoot: string, olderThanMs: number, now = Date.now()): Promise<number> {
  let removed = 0;
  for (const name of await readdir(stagingRoot).catch(() => [] as string[])) {
    const path = join(stagingRoot, name);
    const info = await stat(path).catch(() => undefined);
    if (!info || now - info.mtimeMs < olderThanMs) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
