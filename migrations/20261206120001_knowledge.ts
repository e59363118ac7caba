import type { Knex } from 'knex';

/**
 * Knowledge (issue 11). Items, their vectors and full-text entries live in
 * LanceDB (platform/knowledge/lance-index.ts); Postgres records what they
 * came from and how they relate:
 *
 * - `knowledge_sources`: one row per source (a document or a conversation),
 *   its owner (the tenant every read and write is confined to), its scope,
 *   and the `knowledge.extract` job that reads it.
 * - `knowledge_outcomes`: one row per message (one for a document), in
 *   source order: ok, empty or failed with a reason. Nothing is dropped
 *   without one.
 * - `knowledge_item_refs`: which sources an item stands on. An item written
 *   from one source and repeated by another has two refs; forgetting a
 *   source deletes the items left with none (the reference-counted cascade).
 * - `knowledge_links`: typed edges (supports, rebuts, supersedes, mentions,
 *   derived_from), each with the source whose extraction made it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('knowledge_sources', (t) => {
    t.uuid('id').primary();
    /** The tenant: every item derived from the source is confined to it. */
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('title').notNullable();
    /** private | room | shared, the author (a user or an agent id) and the room. */
    t.text('scope').notNullable();
    t.text('scope_owner').notNullable();
    t.text('room').nullable();
    /** platform/knowledge scopeKey(): the LanceDB partition. */
    t.text('scope_key').notNullable();
    t.integer('messages').notNullable();
    t.uuid('job_id').nullable();
    /** pending → ready | failed; forgetting → (row deleted). */
    t.text('status').notNullable().defaultTo('pending');
    t.integer('items').notNullable().defaultTo(0);
    t.text('error').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['owner_id', 'created_at']);
  });
  await knex.raw(`alter table knowledge_sources add constraint knowledge_sources_status_check check (status in ('pending','ready','failed','forgetting'))`);

  await knex.schema.createTable('knowledge_outcomes', (t) => {
    t.uuid('source_id').notNullable().references('knowledge_sources.id').onDelete('CASCADE');
    t.integer('seq').notNullable();
    t.text('message_id').nullable();
    t.text('outcome').notNullable();
    t.integer('items').notNullable();
    t.integer('merged').notNullable();
    t.text('reason').nullable();
    t.primary(['source_id', 'seq']);
  });
  await knex.raw(`alter table knowledge_outcomes add constraint knowledge_outcomes_check check (outcome in ('ok','empty','failed'))`);

  await knex.schema.createTable('knowledge_item_refs', (t) => {
    t.text('item_id').notNullable();
    t.uuid('source_id').notNullable().references('knowledge_sources.id').onDelete('CASCADE');
    t.uuid('owner_id').notNullable();
    t.text('scope_key').notNullable();
    t.primary(['item_id', 'source_id']);
    t.index(['source_id']);
  });

  await knex.schema.createTable('knowledge_links', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('source_id').notNullable().references('knowledge_sources.id').onDelete('CASCADE');
    t.uuid('owner_id').notNullable();
    t.text('type').notNullable();
    t.text('from_kind').notNullable();
    t.text('from_id').notNullable();
    t.text('to_kind').notNullable();
    t.text('to_id').notNullable();
    t.text('basis').notNullable();
    t.index(['owner_id', 'from_id']);
    t.index(['owner_id', 'to_id']);
    t.index(['source_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('knowledge_links');
  await knex.schema.dropTableIfExists('knowledge_item_refs');
  await knex.schema.dropTableIfExists('knowledge_outcomes');
  await knex.schema.dropTableIfExists('knowledge_sources');
}
