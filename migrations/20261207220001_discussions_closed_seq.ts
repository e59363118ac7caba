import type { Knex } from 'knex';

/**
 * The seq of the `status` event that closed a room (finished, stopped):
 * the room's last word, known after its live stream has expired. A viewer
 * resuming at or after it is told the stream has ended (SSE 204, Socket.IO
 * `ended`), and the snapshot of an expired room carries it as its seq
 * (api/realtime/discussion-watch.ts). Null while the room is open, and for
 * rooms closed before this column (those fall back to the stream, while it
 * is kept).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table discussions add column if not exists closed_seq bigint');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table discussions drop column if exists closed_seq');
}
