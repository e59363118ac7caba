import { z } from 'zod';
import { defineJob } from './define.ts';

export const CodeLanguage = z.enum(['typescript', 'tsx', 'javascript', 'python']);
export type CodeLanguage = z.infer<typeof CodeLanguage>;

const languageByExtension: Readonly<Record<string, CodeLanguage>> = {
  '.ts': 'typescript',
  '.mts': 'typescript',
  '.cts': 'typescript',
  '.tsx': 'tsx',
  '.js': 'javascript',
  '.mjs': 'javascript',
  '.cjs': 'javascript',
  '.jsx': 'javascript',
  '.py': 'python',
};

/** The language a file's extension names (the last path segment's, `/` or `\\` separated), or null. */
export function languageOf(path: string): CodeLanguage | null {
  const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? (languageByExtension[name.slice(dot).toLowerCase()] ?? null) : null;
}

/**
 * A path segment: not empty, not `.` or `..`, without `/`, `\` or control characters. A file name is
 * relative and normalised, segments joined by `/`: no leading `/`, no `./` or `../` anywhere. The name
 * only labels chunks (nothing is read from disk), but it travels into indexes and tools that might.
 */
const segment = String.raw`(?:[^/\\\x00-\x1f.][^/\\\x00-\x1f]*|\.[^/\\\x00-\x1f.][^/\\\x00-\x1f]*|\.\.[^/\\\x00-\x1f]+)`;
export const RelativePath = z
  .string()
  .min(1)
  .max(1024)
  .regex(
    new RegExp(`^${segment}(?:/${segment})*$`),
    'a relative, normalised path: segments joined by "/", none empty, "." or "..", no leading "/", no "\\" or control characters',
  );

export const SourceFile = z
  .object({
    path: RelativePath,
    /** Inferred from the extension when absent. */
    language: CodeLanguage.optional(),
    /** Bounded again by the whole input's PARLEY_JOB_LIMITS `inputBytes` (512 KiB by default). */
    content: z.string().max(524_288),
  })
  .strict();
export type SourceFile = z.infer<typeof SourceFile>;

export const CodeChunkInput = z
  .object({
    files: z.array(SourceFile).min(1).max(500),
  })
  .strict();
export type CodeChunkInput = z.infer<typeof CodeChunkInput>;

export const CodeChunk = z.object({
  path: z.string(),
  language: CodeLanguage,
  kind: z.enum(['function', 'class', 'method']),
  /** Qualified for methods: `Class.method`. */
  symbol: z.string(),
  /** 1-based, inclusive. */
  startLine: z.number().int(),
  endLine: z.number().int(),
  /** sha256 of `content`, hex. */
  contentHash: z.string(),
  content: z.string(),
});
export type CodeChunk = z.infer<typeof CodeChunk>;

export const CodeChunkResult = z.object({
  chunks: z.array(CodeChunk),
  files: z.array(z.object({ path: z.string(), language: CodeLanguage.nullable(), chunks: z.number().int(), error: z.string().optional() })),
});
export type CodeChunkResult = z.infer<typeof CodeChunkResult>;

export const CodeChunkProgress = z.object({ done: z.number().int(), total: z.number().int() });

export const codeChunk = defineJob({
  kind: 'code.chunk',
  v: 1,
  queue: 'code',
  input: CodeChunkInput,
  result: CodeChunkResult,
  progress: CodeChunkProgress,
  defaults: { priority: 'batch', attempts: 2, streamRetentionS: 600, backoff: { baseMs: 1000, maxMs: 10_000 } },
  metered: false,
  summary: 'Source files to tree-sitter chunks (functions, classes, methods), on a piscina thread pool.',
});
