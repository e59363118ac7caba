/**
 * Connections to the backing stores, made once per process by its composition
 * root: Postgres (knex) and its migrations, Redis (with Lua script helpers and
 * the singleton loop that runs housekeeping in one process at a time, and
 * group commit: many callers' statements or commands in one round trip), and
 * the MongoDB-wire server.
 */
export { connectDb, microsecondInstant, pingPostgres } from './db.ts';
export type { Db } from './db.ts';
export { migrateLatest, migrationConfig, migrationsDir, withDb } from './migrate.ts';
export { connectMongo } from './mongo.ts';
export type { Mongo } from './mongo.ts';
export { connectRedis, isClusterUrl, luaScript, whenReady } from './redis.ts';
export { GroupCommit, sharedPipeline } from './group-commit.ts';
export type { GroupCommitOptions, PipelineReply, SharedPipeline } from './group-commit.ts';
export { startSingletonLoop } from './singleton-loop.ts';
export type { SingletonLoop } from './singleton-loop.ts';
export { dependencyDown, portOf } from './outage.ts';
export type { Dependency } from './outage.ts';
