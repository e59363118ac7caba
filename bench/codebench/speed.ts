/**
 * Indexing speed against the bare embedder. The embedder is the bottleneck,
 * so the baseline (A) is Ollama's /api/embed called directly, over HTTP, on
 * exactly the texts a full index embeds (the product's chunks of the same
 * tree, one per content hash); Parley (B) is a full code.index job of that
 * tree from an empty store, scan to optimized indexes, timed from its
 * record. Interleaved A B A B; the verdict is median(A) / median(B) ≥ 0.8.
 *
 * First, the batch size: /api/embed throughput on a sample of the chunks for
 * several texts-per-call, one call in flight and two.
 */
import { Embedder } from '../../platform/vectors/index.ts';
import { extractSource } from '../../workers/code/extract.ts';
import { median } from '../internal/stats.ts';
import { libraries, librarySources } from './libraries.ts';
import { indexCorpus } from './quality.ts';
import { startBenchStack, type BenchStack } from './stack.ts';

async function embedDirect(host: string, texts: readonly string[], batch: number, inFlight: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < texts.length) {
      const part = texts.slice(next, next + batch);
      next += batch;
      const res = await fetch(`${host}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'all-minilm', input: part, truncate: false }) });
      if (!res.ok) throw new Error(`/api/embed answered ${res.status}: ${await res.text()}`);
      await res.json();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return performance.now() - t0;
}

export async function runSpeed(stack: BenchStack, log: (s: string) => void): Promise<string[]> {
  const host = stack.api.config.ollama.host;
  const lib = libraries.moreItertools;
  const files = Object.fromEntries(librarySources(lib).map((f) => [f.path, f.content]));
  const model = await new Embedder(stack.api.ollama).describe('all-minilm');
  const texts = [
    ...new Map(
      Object.entries(files).flatMap(([path, content]) =>
        extractSource({ path, content }, { maxTokens: 254, tokenizer: model.tokenizer }).chunks.map((c) => [c.contentHash, c.text] as const),
      ),
    ).values(),
  ];
  log(`speed: ${lib.name} ${lib.version} as shipped, ${texts.length} distinct chunks`);

  // Batch size, on a sample.
  const sample = texts.slice(0, 96);
  const sweep: { batch: number; inFlight: number; perSecond: number }[] = [];
  for (const inFlight of [1, 2]) {
    for (const batch of [1, 4, 8, 16, 32, 64]) {
      const ms = await embedDirect(host, sample, batch, inFlight);
      sweep.push({ batch, inFlight, perSecond: sample.length / (ms / 1000) });
    }
  }
  log(
    `  /api/embed chunks/s by texts per call (1 in flight | 2 in flight): ${[1, 4, 8, 16, 32, 64].map((b) => `${b}: ${sweep.find((s) => s.batch === b && s.inFlight === 1)!.perSecond.toFixed(1)} | ${sweep.find((s) => s.batch === b && s.inFlight === 2)!.perSecond.toFixed(1)}`).join('; ')}`,
  );
  const best = [...sweep].sort((a, b) => b.perSecond - a.perSecond)[0]!;
  log(
    `  fastest: ${best.batch} texts per call, ${best.inFlight} in flight (${best.perSecond.toFixed(1)} chunks/s); the product embeds ${stack.api.config.code.embedBatch} per call, 2 in flight`,
  );

  // A/B pairs. A uses the fastest setting found, so the baseline is the best the bare embedder did here.
  const a: number[] = [];
  const b: number[] = [];
  for (let pair = 1; pair <= 2; pair++) {
    const msA = await embedDirect(host, texts, best.batch, best.inFlight);
    a.push(msA);
    const fresh = await startBenchStack('codebench-speed');
    try {
      const ix = await indexCorpus(fresh, { library: lib, files, queries: [], dropped: { short: 0, duplicate: 0 } }, `${lib.name}-speed`);
      if (ix.job.embedded !== texts.length) log(`  note: the index embedded ${ix.job.embedded} chunks, the baseline ${texts.length}`);
      b.push(ix.job.durationMs);
      log(
        `  pair ${pair}: A /api/embed ${(msA / 1000).toFixed(1)} s (${(texts.length / (msA / 1000)).toFixed(1)} chunks/s) | B full index ${(ix.job.durationMs / 1000).toFixed(1)} s (${(ix.job.embedded / (ix.job.durationMs / 1000)).toFixed(1)} chunks/s), B/A speed ${(msA / ix.job.durationMs).toFixed(2)}`,
      );
    } finally {
      await fresh.stop();
    }
  }
  const ratio = median(a) / median(b);
  return [
    `full index speed ${ratio.toFixed(2)}× the bare /api/embed on the same ${texts.length} chunks (medians: ${(median(b) / 1000).toFixed(1)} s vs ${(median(a) / 1000).toFixed(1)} s) ≥ 0.8: ${ratio >= 0.8 ? 'PASS' : 'MISS'}`,
  ];
}
