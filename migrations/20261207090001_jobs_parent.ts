import type { Knex } from 'knex';

/**
 * A job's parent (platform/jobs/children.ts): the job that fanned out into
 * it, `code.index` for its `code.batch` jobs. A parent finds its children by
 * it after a crash, and a cancel reaches them through it. The partial index
 * holds children only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table jobs add column if not exists parent_id uuid');
  await knex.raw('create index if not exists jobs_parent_id on jobs (parent_id, queued_at) where parent_id is not null');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists jobs_parent_id');
  await knex.raw('alter table jobs drop column if exists parent_id');
}
