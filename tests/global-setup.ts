/**
 * Once per test run: checks the services are there (scripts/test.sh brought
 * them up) and migrates the test database to the latest schema.
 */
export default async function setup(): Promise<void> {
  for (const name of ['REDIS_URL', 'DATABASE_URL', 'OLLAMA_HOST', 'MONGODB_URL']) {
    if (!process.env[name]) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts the services`);
  }
  const { migrateLatest } = await import('../platform/connections/index.ts');
  await migrateLatest(process.env.DATABASE_URL!);
}
