import type { Knex } from 'knex';

/**
 * Token usage per user, model and UTC day, and token budgets.
 *
 * `usage_daily` is written in the same statement as a job's terminal write
 * (platform/jobs/store.ts `finish()`), so each job counts exactly once. Rows
 * already terminal when this runs are counted here, by the day they finished.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('usage_daily', (t) => {
    t.uuid('user_id').notNullable().references('users.id');
    /** Ollama's canonical name (`x` is stored as `x:latest`). */
    t.text('model').notNullable();
    t.date('day').notNullable();
    t.bigInteger('prompt_tokens').notNullable().defaultTo(0);
    t.bigInteger('completion_tokens').notNullable().defaultTo(0);
    t.integer('jobs').notNullable().defaultTo(0);
    /** Jobs whose counts are estimates (cancelled, failed or stopped mid-stream). */
    t.integer('estimated_jobs').notNullable().defaultTo(0);
    t.primary(['user_id', 'model', 'day']);
    t.index(['day']);
  });
  await knex.raw(`
    insert into usage_daily (user_id, model, day, prompt_tokens, completion_tokens, jobs, estimated_jobs)
    select owner_id, case when model is null then '' when model ~ ':[^/]*$' then model else model || ':latest' end, (finished_at at time zone 'UTC')::date,
           sum(coalesce(tokens_in, 0)), sum(coalesce(tokens_out, 0)), count(*), count(*) filter (where usage_estimated)
    from jobs
    where state in ('completed', 'failed', 'cancelled') and finished_at is not null and (tokens_in is not null or tokens_out is not null)
    group by 1, 2, 3
  `);

  await knex.schema.createTable('budgets', (t) => {
    /** 'user': subject is a user id; 'role': subject is a role name and the limit applies to each user of it. */
    t.text('scope').notNullable();
    t.text('subject').notNullable();
    t.text('period').notNullable();
    t.bigInteger('limit_tokens').notNullable();
    t.uuid('updated_by').nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['scope', 'subject', 'period']);
  });
  await knex.raw(`alter table budgets add constraint budgets_scope_check check (scope in ('user', 'role'))`);
  await knex.raw(`alter table budgets add constraint budgets_period_check check (period in ('day', 'month'))`);
  await knex.raw(`alter table budgets add constraint budgets_limit_check check (limit_tokens > 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('budgets');
  await knex.schema.dropTable('usage_daily');
}
