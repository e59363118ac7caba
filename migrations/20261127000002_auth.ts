import type { Knex } from 'knex';

/**
 * Accounts and access: users, refresh sessions, API keys, the JWT signing
 * keyring and the append-only audit log. Jobs gain a required owner: rows
 * from before accounts existed are given to the built-in `system` user.
 */
export const SYSTEM_USER_ID = '00000000-0000-4000-8000-000000000000';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary();
    t.text('username').notNullable();
    /** argon2id PHC string; null for accounts that cannot log in (system). */
    t.text('password_hash').nullable();
    t.text('role').notNullable();
    t.boolean('disabled').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`create unique index users_username on users (lower(username))`);
  await knex.raw(`alter table users add constraint users_role_check check (role in ('admin','operator','member','viewer'))`);

  await knex.schema.createTable('sessions', (t) => {
    t.uuid('id').primary();
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('scope').notNullable().defaultTo('');
    t.text('ip').nullable();
    t.text('user_agent').nullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true }).nullable();
    t.text('revoked_reason').nullable();
    t.index(['user_id']);
  });

  // Every refresh token ever issued, by hash. A token used twice means it leaked: its session is revoked.
  await knex.schema.createTable('refresh_tokens', (t) => {
    t.text('token_hash').primary();
    t.uuid('session_id').notNullable().references('sessions.id').onDelete('CASCADE');
    t.timestamp('issued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('used_at', { useTz: true }).nullable();
    t.index(['session_id']);
  });

  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary();
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('name').notNullable();
    /** sha256 of the secret part; keys are 256-bit random, so a fast hash is enough. */
    t.text('secret_hash').notNullable();
    t.jsonb('scopes').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).nullable();
    t.timestamp('last_used_at', { useTz: true }).nullable();
    t.timestamp('revoked_at', { useTz: true }).nullable();
    t.index(['user_id']);
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.text('private_pem').notNullable();
    t.text('public_pem').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** Retired keys still verify until `expires_at`; they no longer sign. */
    t.timestamp('retired_at', { useTz: true }).nullable();
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('action').notNullable();
    t.text('outcome').notNullable();
    t.uuid('actor_id').nullable();
    t.text('actor_name').nullable();
    t.text('ip').nullable();
    t.text('user_agent').nullable();
    t.text('target_type').nullable();
    t.text('target_id').nullable();
    t.jsonb('details').nullable();
    t.index(['at']);
    t.index(['action', 'at']);
    t.index(['actor_id', 'at']);
  });
  // Append-only: updates and deletes are refused by the database itself.
  await knex.raw(`
    create function audit_events_append_only() returns trigger language plpgsql as $$
    begin raise exception 'audit_events is append-only'; end $$;
    create trigger audit_events_no_update before update or delete on audit_events
      for each row execute function audit_events_append_only();
    create trigger audit_events_no_truncate before truncate on audit_events
      for each statement execute function audit_events_append_only();
  `);

  await knex('users').insert({ id: SYSTEM_USER_ID, username: 'system', password_hash: null, role: 'admin', disabled: true });
  await knex('jobs').whereNull('owner_id').update({ owner_id: SYSTEM_USER_ID });
  await knex.raw(`drop index jobs_idempotency_key`);
  await knex.raw(`alter table jobs alter column owner_id type uuid using owner_id::uuid`);
  await knex.raw(`create unique index jobs_idempotency_key on jobs (owner_id, idempotency_key) where idempotency_key is not null`);
  await knex.raw(`alter table jobs alter column owner_id set not null`);
  await knex.raw(`alter table jobs add constraint jobs_owner_fk foreign key (owner_id) references users(id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table jobs drop constraint jobs_owner_fk`);
  await knex.raw(`alter table jobs alter column owner_id drop not null`);
  await knex.raw(`drop index jobs_idempotency_key`);
  await knex.raw(`alter table jobs alter column owner_id type text using owner_id::text`);
  await knex.raw(`create unique index jobs_idempotency_key on jobs (coalesce(owner_id, ''), idempotency_key) where idempotency_key is not null`);
  await knex.raw(`update jobs set owner_id = null where owner_id = ?`, [SYSTEM_USER_ID]);
  await knex.schema.dropTable('audit_events');
  await knex.raw(`drop function audit_events_append_only()`);
  await knex.schema.dropTable('signing_keys');
  await knex.schema.dropTable('api_keys');
  await knex.schema.dropTable('refresh_tokens');
  await knex.schema.dropTable('sessions');
  await knex.schema.dropTable('users');
}
