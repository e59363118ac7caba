/**
 * A small ustar writer (gzipped): the benchmark uploads trees with it, and
 * the tests craft with it the archives a careful client would never send.
 */
import { gzipSync } from 'node:zlib';

export interface TarEntry {
  /** A Buffer is written as it is: names that are not UTF-8, as an old Latin-1 tar would carry. */
  name: string | Buffer;
  content?: string | Buffer;
  /** '0' file (default), '5' directory, '2' symlink, '1' hard link, '3' character device. */
  type?: '0' | '1' | '2' | '3' | '5';
  linkname?: string;
  /** Declared size, when it must differ from the content's (a lying header). */
  size?: number;
  /** pax records for a header of their own before the entry (`{ size: '1e1' }`), beside any long-name `path`. */
  pax?: Record<string, string | Buffer>;
}

/** One pax record, "<len> <key>=<value>\n": its length counts bytes, its own digits included. */
function paxRecord(key: string, value: string | Buffer): Buffer {
  const rec = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = rec.length + 2;
  while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
  return Buffer.concat([Buffer.from(String(len)), rec]);
}

function header(name: string | Buffer, size: number, type: string, linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  Buffer.from(name).copy(h, 0, 0, 100);
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
    'ascii',
  );
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
    const records = { ...(Buffer.byteLength(e.name) > 100 ? { path: e.name } : {}), ...e.pax };
    if (Object.keys(records).length) {
      const pax = Buffer.concat(Object.entries(records).map(([k, v]) => paxRecord(k, v)));
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
