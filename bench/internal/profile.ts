/**
 * A CPU profile of this process over one stretch of a benchmark, summed by
 * where the code lives: a package under node_modules, a file of ours, or
 * V8/Node internals (GC, native, the program itself). It answers "which part
 * of the stack burns the CPU" without a flame-graph viewer. With
 * BENCH_PROFILE_OUT=<file>, the raw profile is also written there (open it in
 * Chrome DevTools; the last profiled stretch wins).
 */
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function bucketOf(node: ProfileNode, root: string): string {
  const { url, functionName } = node.callFrame;
  if (!url) {
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)') return '(program: V8/Node/libuv)';
    return `(native) ${functionName || 'anonymous'}`;
  }
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    return `pkg ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (path.startsWith('node:')) return `node ${path.slice(5).split('/')[0]}`;
  if (path.startsWith(root)) return path.slice(root.length + 1);
  return path;
}

/** Profiles from now until the returned `stop()`; `stop()` returns self time per bucket (ms), largest first. */
export async function profileCpu(root: string, intervalUs = 200): Promise<{ stop(): Promise<{ buckets: [string, number][]; totalMs: number }> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
      session.disconnect();
      if (process.env.BENCH_PROFILE_OUT) (await import('node:fs')).writeFileSync(process.env.BENCH_PROFILE_OUT, JSON.stringify(profile));
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const self = new Map<string, number>();
      for (let i = 0; i < profile.samples.length; i++) {
        const node = byId.get(profile.samples[i]!);
        if (!node) continue;
        const b = bucketOf(node, root);
        self.set(b, (self.get(b) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
      }
      const buckets = [...self].filter(([b]) => b !== '(idle)').sort((a, b) => b[1] - a[1]);
      return { buckets, totalMs: buckets.reduce((s, [, ms]) => s + ms, 0) };
    },
  };
}

export function describeProfile(p: { buckets: [string, number][]; totalMs: number }, ops: number, unit = 'job', top = 14): string[] {
  return [
    `CPU profile of this process (self time by where the code lives; ${p.totalMs.toFixed(0)} ms busy = ${(p.totalMs / ops).toFixed(3)} ms per ${unit}):`,
    ...p.buckets.slice(0, top).map(([b, ms]) => `    ${((ms / p.totalMs) * 100).toFixed(1).padStart(5)}%  ${(ms / ops).toFixed(3)} ms  ${b}`),
  ];
}
