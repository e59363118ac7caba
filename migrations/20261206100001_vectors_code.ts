import type { Knex } from 'knex';

/**
 * The vector store's catalog and code intelligence. Vectors and full-text
 * indexes live in LanceDB (platform/vectors); Postgres records what they
 * are and what they hold:
 *
 * - `vector_indexes`: one row per generation of an index. A generation is a
 *   LanceDB table built under one identity (embedding model, its digest, its
 *   dimensions, the chunker version). At most one generation of a
 *   collection serves queries; a new identity builds beside it and takes
 *   over when complete (platform/vectors/catalog.ts).
 * - `vector_collections`: the generic document collections (POST /v1/collections).
 * - `code_repositories`: repositories and their source (a folder under the
 *   configured roots, or an uploaded archive), with the same visibility
 *   model as discussions.
 * - `code_index_state` / `code_files`: per repository and generation, what
 *   was indexed, file by file, with each file's content hash: a re-index
 *   compares the tree against it and touches only what changed.
 * - `code_modules` / `code_symbols`: metadata per file (imports) and per
 *   definition (name, kind, signature, span, parent, docstring), for
 *   symbol lookups; they do not depend on the embedding model.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('vector_indexes', (t) => {
    t.uuid('id').primary();
    /** The deployment's key prefix: deployments (and test suites) sharing a database keep separate catalogs. */
    t.text('namespace').notNullable();
    /** `code`, or a collection's id. */
    t.text('collection').notNullable();
    t.jsonb('identity').notNullable();
    t.text('identity_hash').notNullable();
    t.text('table_name').notNullable();
    t.text('state').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('serving_at', { useTz: true }).nullable();
    t.timestamp('retired_at', { useTz: true }).nullable();
    t.unique(['namespace', 'collection', 'identity_hash']);
  });
  await knex.raw(`alter table vector_indexes add constraint vector_indexes_state_check check (state in ('building','serving','retired'))`);
  await knex.raw(`create unique index vector_indexes_one_serving on vector_indexes (namespace, collection) where state = 'serving'`);

  await knex.schema.createTable('vector_collections', (t) => {
    t.uuid('id').primary();
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('description').nullable();
    /** Declared metadata fields: { name: 'string' | 'int' | 'float' | 'bool' | 'string[]' }. */
    t.jsonb('fields').notNullable().defaultTo('{}');
    t.text('embed_model').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['owner_id', 'name']);
  });

  await knex.schema.createTable('code_repositories', (t) => {
    t.uuid('id').primary();
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('visibility').notNullable().defaultTo('private');
    t.specificType('shared_with', 'uuid[]').notNullable().defaultTo('{}');
    /** { type: 'path', path } or { type: 'archive' }. */
    t.jsonb('source').notNullable();
    /** The uploaded archive's summary: { bytes, files, sha256, uploadedAt }; null until one is uploaded. */
    t.jsonb('snapshot').nullable();
    /** The latest code.index job. */
    t.uuid('index_job_id').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['owner_id', 'name']);
  });
  await knex.raw(`alter table code_repositories add constraint code_repositories_visibility_check check (visibility in ('private','shared','public'))`);
  await knex.raw(`create index code_repositories_shared_with on code_repositories using gin (shared_with)`);

  await knex.schema.createTable('code_index_state', (t) => {
    t.uuid('repository_id').notNullable().references('code_repositories.id').onDelete('CASCADE');
    t.uuid('index_id').notNullable().references('vector_indexes.id').onDelete('CASCADE');
    t.integer('files').notNullable().defaultTo(0);
    t.integer('chunks').notNullable().defaultTo(0);
    t.jsonb('languages').notNullable().defaultTo('{}');
    t.jsonb('skipped').notNullable().defaultTo('{}');
    /** Null while the first build into this generation is still running. */
    t.timestamp('indexed_at', { useTz: true }).nullable();
    /** The job that last wrote into this generation for the repository. */
    t.uuid('job_id').nullable();
    /** Files already indexed when that job's first attempt began: a later attempt counts what it resumed from. */
    t.integer('job_baseline').nullable();
    t.primary(['repository_id', 'index_id']);
  });

  await knex.schema.createTable('code_files', (t) => {
    t.uuid('repository_id').notNullable().references('code_repositories.id').onDelete('CASCADE');
    t.uuid('index_id').notNullable().references('vector_indexes.id').onDelete('CASCADE');
    t.text('path').notNullable();
    t.text('file_hash').notNullable();
    t.text('language').notNullable();
    t.integer('bytes').notNullable();
    t.integer('chunks').notNullable();
    t.primary(['repository_id', 'index_id', 'path']);
  });

  await knex.schema.createTable('code_modules', (t) => {
    t.uuid('repository_id').notNullable().references('code_repositories.id').onDelete('CASCADE');
    t.text('path').notNullable();
    t.text('language').notNullable();
    t.text('file_hash').notNullable();
    /** [{ module, names[] }] as written in the file. */
    t.jsonb('imports').notNullable().defaultTo('[]');
    t.primary(['repository_id', 'path']);
  });

  await knex.schema.createTable('code_symbols', (t) => {
    t.bigIncrements('id');
    t.uuid('repository_id').notNullable().references('code_repositories.id').onDelete('CASCADE');
    t.text('path').notNullable();
    t.text('language').notNullable();
    t.text('name').notNullable();
    t.text('qualified_name').notNullable();
    t.text('kind').notNullable();
    t.text('signature').notNullable();
    t.integer('start_line').notNullable();
    t.integer('start_column').notNullable();
    t.integer('end_line').notNullable();
    t.integer('end_column').notNullable();
    t.text('parent').nullable();
    t.text('docstring').nullable();
    t.index(['repository_id', 'path']);
  });
  await knex.raw(`create index code_symbols_name on code_symbols (repository_id, lower(name))`);
  await knex.raw(`create index code_symbols_qualified on code_symbols (repository_id, lower(qualified_name))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('code_symbols');
  await knex.schema.dropTableIfExists('code_modules');
  await knex.schema.dropTableIfExists('code_files');
  await knex.schema.dropTableIfExists('code_index_state');
  await knex.schema.dropTableIfExists('code_repositories');
  await knex.schema.dropTableIfExists('vector_collections');
  await knex.schema.dropTableIfExists('vector_indexes');
}
