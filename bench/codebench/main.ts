/**
 * bench/codebench: code search measured on real libraries.
 *
 *   npx tsx bench/codebench/main.ts                      # every phase
 *   CODEBENCH_ONLY=quality npx tsx bench/codebench/main.ts
 *   CODEBENCH_ONLY=fusion npx tsx bench/codebench/main.ts  # quality, then RRF against score fusion (fusion.ts)
 *
 * Phases: quality (retrieval on lodash and more-itertools), speed (a full
 * index against Ollama's /api/embed on the same chunks), scale (the 10k-chunk
 * re-index, search latency and ANN recall at 50k rows, the flat-scan
 * crossover, the search path's overhead, versions after 1,000 updates).
 * docs/code-search.md explains each figure. Env: CODEBENCH_SEED (bootstrap
 * seed, printed), PARLEY_BENCH_CACHE (where libraries and state go),
 * CODEBENCH_SCALE_STEPS=updates (the scale phase runs only its 1,000 updates).
 */
import { describeMachine } from '../internal/cost.ts';
import { teardownOnExit } from '../internal/parley.ts';
import { runQuality } from './quality.ts';
import { startBenchStack } from './stack.ts';

const only = new Set((process.env.CODEBENCH_ONLY ?? 'quality,speed,scale').split(',').map((s) => s.trim()));
const seed = Number(process.env.CODEBENCH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const log = (s: string) => console.log(s);

console.log(`codebench: phases ${[...only].join(', ')}; seed ${seed}`);
console.log(await describeMachine());
const stack = await startBenchStack('codebench');
const teardown = teardownOnExit(() => stack.stop());
const verdicts: string[] = [];
try {
  if (only.has('quality') || only.has('scale') || only.has('fusion')) {
    const q = await runQuality(stack, seed, log);
    verdicts.push(...q.verdicts);
    if (only.has('fusion')) {
      const { runFusion } = await import('./fusion.ts');
      await runFusion(stack, q, seed, log);
    }
    if (only.has('scale')) {
      const { runScale } = await import('./scale.ts');
      verdicts.push(...(await runScale(stack, q, seed, log)));
    }
  }
  if (only.has('speed')) {
    const { runSpeed } = await import('./speed.ts');
    verdicts.push(...(await runSpeed(stack, log)));
  }
} finally {
  console.log('\n== codebench verdicts ==');
  for (const v of verdicts) console.log(v);
  await teardown();
}
