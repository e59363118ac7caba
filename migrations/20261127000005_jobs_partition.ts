import type { Knex } from 'knex';

/**
 * Which Redis namespace (PARLEY_KEY_PREFIX) a job's queue lives in. Several
 * deployments (or test stacks) can share one Postgres; each sweeper must only
 * reconcile and age the jobs of its own queues.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('jobs', (t) => {
    t.text('key_prefix').notNullable().defaultTo('parley');
  });
  await knex.raw(`create index jobs_sweep on jobs (key_prefix, state, updated_at) where state in ('queued', 'active')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index jobs_sweep');
  await knex.schema.alterTable('jobs', (t) => {
    t.dropColumn('key_prefix');
  });
}
