/**
 * The service manager: `npm run services -- up|down|status|env`.
 *
 * - up: idempotent. Starts a private Redis, Postgres, Ollama and FerretDB under
 *   the data folder for every service whose URL is not configured, and only
 *   checks reachability of those that are. Exits non-zero, saying what is
 *   missing and how to fix it, when anything cannot start.
 * - env: prints `export NAME=value` lines for processes and tests.
 */
import { ferretdb } from './ferretdb.ts';
import { ollama } from './ollama.ts';
import { postgres } from './postgres.ts';
import { ServiceProblem } from './proc.ts';
import { redis } from './redis.ts';
import type { Service } from './service.ts';
import { settings } from './settings.ts';

const services: Service[] = [redis, postgres, ferretdb, ollama];

function envLines(): string[] {
  const vars: Record<string, string> = {};
  for (const s of services) Object.assign(vars, s.env());
  return Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
}

function shellQuote(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

async function main(cmd: string | undefined): Promise<number> {
  switch (cmd) {
    case 'env':
      process.stdout.write(`${envLines().join('\n')}\n`);
      return 0;
    case 'up': {
      const t0 = Date.now();
      const failures: string[] = [];
      for (const s of services) {
        const t = Date.now();
        try {
          const state = await s.up();
          process.stderr.write(`[services] ${s.name.padEnd(8)} ${state} (${((Date.now() - t) / 1000).toFixed(1)}s)\n`);
        } catch (err) {
          failures.push(err instanceof ServiceProblem ? err.message : `${s.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (failures.length) {
        process.stderr.write(`\n[services] could not bring everything up:\n${failures.map((f) => `- ${f}`).join('\n')}\n`);
        return 1;
      }
      process.stderr.write(`[services] all up in ${((Date.now() - t0) / 1000).toFixed(1)}s; data in ${settings.dataDir}, caches in ${settings.cacheDir}\n`);
      return 0;
    }
    case 'down':
      for (const s of [...services].reverse()) {
        const state = await s.down().catch((e: unknown) => `error: ${e instanceof Error ? e.message : String(e)}`);
        process.stderr.write(`[services] ${s.name.padEnd(8)} ${state}\n`);
      }
      return 0;
    case 'status': {
      let ok = true;
      for (const s of services) {
        const state = await s.status();
        if (state === 'down') ok = false;
        process.stdout.write(`${s.name.padEnd(8)} ${s.external() ? 'external' : 'managed '} ${state}\n`);
      }
      return ok ? 0 : 1;
    }
    default:
      process.stderr.write('usage: npm run services -- up|down|status|env\n');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[services] ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
