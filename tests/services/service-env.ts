/**
 * The service addresses the service tests talk to. `npm test` (scripts/test.sh)
 * exports them from `npm run services -- env`; DATABASE_URL is the test
 * database there. A missing one fails loudly rather than falling back to a
 * default, so a test can never pass against something it did not mean to reach.
 */
export const serviceUrlNames = ['REDIS_URL', 'DATABASE_URL', 'OLLAMA_HOST', 'MONGODB_URL'] as const;

type Name = (typeof serviceUrlNames)[number] | 'PARLEY_CHAT_MODEL' | 'PARLEY_EMBED_MODEL';

export function serviceEnv(name: Name): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts the services and exports it`);
  return value;
}

/** A name no other test, run or engineer will pick: `${prefix}_${8 hex}`. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().replace(/-/g, '').slice(0, 8)}`;
}
