/** `npm run migrate -- [latest|rollback|down-all|status]` against DATABASE_URL. */
import { loadConfig } from '../platform/config.ts';
import { migrationConfig, withDb } from '../platform/connections/index.ts';

const cmd = process.argv[2] ?? 'latest';
const { databaseUrl } = loadConfig();
await withDb(databaseUrl, async (db) => {
  const cfg = migrationConfig();
  switch (cmd) {
    case 'latest': {
      const [, names] = (await db.migrate.latest(cfg)) as [number, string[]];
      console.log(names.length ? `migrated: ${names.join(', ')}` : 'already at the latest schema');
      break;
    }
    case 'rollback': {
      const [, names] = (await db.migrate.rollback(cfg)) as [number, string[]];
      console.log(`rolled back: ${names.join(', ') || 'nothing'}`);
      break;
    }
    case 'down-all': {
      const [, names] = (await db.migrate.rollback(cfg, true)) as [number, string[]];
      console.log(`rolled back: ${names.join(', ') || 'nothing'}`);
      break;
    }
    case 'status': {
      const [done, pending] = (await db.migrate.list(cfg)) as [{ name: string }[], string[]];
      console.log(`applied: ${done.map((d) => d.name).join(', ') || 'none'}\npending: ${pending.join(', ') || 'none'}`);
      break;
    }
    default:
      console.error('usage: npm run migrate -- latest|rollback|down-all|status');
      process.exitCode = 2;
  }
});
