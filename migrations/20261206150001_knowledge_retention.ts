import type { Knex } from 'knex';

/**
 * Knowledge retention (issue 11): per owner and scope, how long items live
 * (a TTL from when they were recorded) and how fast they decay (a half-life
 * from when they were last said). Items carry the expiry computed from it
 * (platform/knowledge/retention.ts); a scope without a row keeps its items.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('knowledge_retention', (t) => {
    t.uuid('owner_id').notNullable().references('users.id').onDelete('CASCADE');
    /** platform/knowledge scopeKey(). */
    t.text('scope_key').notNullable();
    t.text('scope').notNullable();
    t.text('room').nullable();
    t.integer('ttl_seconds').nullable();
    t.integer('half_life_seconds').nullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['owner_id', 'scope_key']);
  });
  await knex.raw(
    `alter table knowledge_retention add constraint knowledge_retention_positive check ((ttl_seconds is null or ttl_seconds > 0) and (half_life_seconds is null or half_life_seconds > 0))`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('knowledge_retention');
}
