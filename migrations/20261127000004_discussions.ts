import type { Knex } from 'knex';

/**
 * The discussion arena's relational part: agents (a persona on a model) and
 * rooms, with their speakers and moderator. Transcripts live in MongoDB; the
 * room row carries the turn bookkeeping (see platform/discussions/store.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('agents', (t) => {
    t.uuid('id').primary();
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('persona').notNullable();
    t.text('model').notNullable();
    t.jsonb('params').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['owner_id', 'created_at']);
  });

  await knex.schema.createTable('discussions', (t) => {
    t.uuid('id').primary();
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('topic').notNullable();
    t.jsonb('policy').notNullable();
    t.text('visibility').notNullable().defaultTo('private');
    t.specificType('shared_with', 'uuid[]').notNullable().defaultTo('{}');
    t.text('status').notNullable().defaultTo('draft');
    t.text('status_reason').nullable();
    t.integer('current_turn').notNullable().defaultTo(0);
    t.boolean('speaking').notNullable().defaultTo(false);
    t.uuid('speaker_id').nullable();
    t.uuid('turn_job_id').nullable();
    t.integer('run').notNullable().defaultTo(0);
    t.bigInteger('tokens_used').notNullable().defaultTo(0);
    t.uuid('parent_id').nullable().references('discussions.id').onDelete('SET NULL');
    t.integer('fork_turn').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true }).nullable();
    t.timestamp('finished_at', { useTz: true }).nullable();
    t.index(['owner_id', 'created_at']);
    t.index(['status', 'updated_at']);
    t.index(['parent_id']);
  });
  await knex.raw(`alter table discussions add constraint discussions_status_check check (status in ('draft','running','paused','stopped','finished'))`);
  await knex.raw(`alter table discussions add constraint discussions_visibility_check check (visibility in ('private','shared','public'))`);
  await knex.raw(`create index discussions_shared_with on discussions using gin (shared_with)`);
  await knex.raw(`create index discussions_public on discussions (created_at) where visibility = 'public'`);

  await knex.schema.createTable('discussion_agents', (t) => {
    t.uuid('discussion_id').notNullable().references('discussions.id').onDelete('CASCADE');
    // An agent in use by a room cannot be deleted: the room's transcript names it.
    t.uuid('agent_id').notNullable().references('agents.id').onDelete('RESTRICT');
    t.text('role').notNullable();
    t.integer('position').notNullable();
    /** Per-room replacements ({ model?, persona?, params? }), e.g. a fork's divergence. */
    t.jsonb('overrides').notNullable().defaultTo('{}');
    t.primary(['discussion_id', 'role', 'position']);
    t.index(['agent_id']);
  });
  await knex.raw(`alter table discussion_agents add constraint discussion_agents_role_check check (role in ('speaker','moderator'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('discussion_agents');
  await knex.schema.dropTable('discussions');
  await knex.schema.dropTable('agents');
}
