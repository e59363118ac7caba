/** Setup file of the `redis-cluster` project: every Parley connection of the test files goes to the cluster. */
import { inject } from 'vitest';

process.env.REDIS_URL = inject('redisClusterUrl');
