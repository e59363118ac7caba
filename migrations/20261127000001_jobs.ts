import type { Knex } from 'knex';

/**
 * The job record. Postgres is the record of every accepted job; Redis holds
 * the queue and live streams, whose retention can expire.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('jobs', (t) => {
    t.uuid('id').primary();
    t.text('kind').notNullable();
    t.integer('kind_version').notNullable();
    t.text('queue').notNullable();
    t.text('owner_id').nullable();
    t.text('priority').notNullable();
    t.text('state').notNullable().defaultTo('queued');
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('max_attempts').notNullable();
    t.jsonb('input').notNullable();
    t.jsonb('progress').nullable();
    t.jsonb('result').nullable();
    t.text('error_code').nullable();
    t.text('error_message').nullable();
    t.jsonb('error_details').nullable();
    t.text('model').nullable();
    t.integer('tokens_in').nullable();
    t.integer('tokens_out').nullable();
    t.boolean('usage_estimated').notNullable().defaultTo(false);
    t.text('idempotency_key').nullable();
    t.text('request_hash').nullable();
    t.timestamp('queued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true }).nullable();
    t.timestamp('finished_at', { useTz: true }).nullable();
    t.timestamp('cancel_requested_at', { useTz: true }).nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['state', 'queued_at']);
    t.index(['kind', 'queued_at']);
    t.index(['owner_id', 'queued_at']);
  });
  await knex.raw(`alter table jobs add constraint jobs_state_check check (state in ('queued','active','completed','failed','cancelled'))`);
  await knex.raw(`alter table jobs add constraint jobs_priority_check check (priority in ('interactive','normal','batch'))`);
  // One idempotency key per owner; anonymous callers share the '' owner.
  await knex.raw(`create unique index jobs_idempotency_key on jobs (coalesce(owner_id, ''), idempotency_key) where idempotency_key is not null`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('jobs');
}
