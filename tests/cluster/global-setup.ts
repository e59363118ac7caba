/**
 * Global setup of the `redis-cluster` test project: starts a 3-node Redis
 * Cluster for the run and hands its URL to the test files (tests/cluster/env.ts
 * puts it in REDIS_URL), so the spine and realtime suites run on a cluster.
 */
import type { TestProject } from 'vitest/node';
import { startRedisCluster } from './redis-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisClusterUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startRedisCluster();
  console.log(`[redis-cluster] 3 masters on 127.0.0.1:${cluster.ports.join(', ')}`);
  project.provide('redisClusterUrl', cluster.url);
  return cluster.stop;
}
