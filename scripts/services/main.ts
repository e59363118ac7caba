/**
 * The service manager: `npm run services -- up|down|status|env|purge [name...]`.
 *
 * - up: idempotent. Starts a private Redis, Postgres, Ollama and FerretDB under
 *   the data folder for every service whose URL is not configured, and only
 *   checks reachability of those that are. Before starting or building
 *   anything it checks that every managed port is free or already ours, and
 *   stops at once with one line per port held by something else (another
 *   clone's services, say). Exits non-zero, saying what is missing and how to
 *   fix it, when anything cannot start.
 * - down: stops the managed services. purge: stops them and removes their data.
 * - env: prints `export NAME=value` lines for processes and tests.
 * Names (redis, postgres, mongo, ollama) limit a command to those services.
 */
import { join } from 'node:path';
import { ferretdb } from './ferretdb.ts';
import { withLock } from './lock.ts';
import { ollama } from './ollama.ts';
import { PortTaken } from './ports.ts';
import { postgres } from './postgres.ts';
import { ensureDebianPackages, ServiceProblem, which } from './proc.ts';
import { redis } from './redis.ts';
import type { Service } from './service.ts';
import { settings } from './settings.ts';

const all: Service[] = [redis, postgres, ferretdb, ollama];

function envLines(services: Service[]): string[] {
  const vars: Record<string, string> = {};
  for (const s of services) Object.assign(vars, s.env());
  return Object.entries(vars).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
}

function shellQuote(v: string): string {
  return /^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

function describe(err: unknown, s: Service): string {
  if (err instanceof ServiceProblem || err instanceof PortTaken) return err.message;
  return `${s.name}: ${err instanceof Error ? err.message : String(err)}`;
}

async function main(cmd: string | undefined, names: string[]): Promise<number> {
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(`[services] unknown service(s) ${unknown.join(', ')}; known: ${all.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const services = names.length ? all.filter((s) => names.includes(s.name)) : all;
  if (cmd === 'up' || cmd === 'down' || cmd === 'purge')
    // One at a time per data folder: a second `up` waits for the first, then finds everything up.
    return withLock(join(settings.dataDir, 'services.lock'), () => run(cmd, services), {
      onWait: (pid) => process.stderr.write(`[services] another services command (pid ${pid}) is running on ${settings.dataDir}; waiting for it to finish\n`),
    });
  return run(cmd, services);
}

async function run(cmd: string | undefined, services: Service[]): Promise<number> {
  switch (cmd) {
    case 'env':
      process.stdout.write(`${envLines(services).join('\n')}\n`);
      return 0;
    case 'up': {
      const t0 = Date.now();
      const taken: string[] = [];
      for (const s of services) {
        try {
          await s.preflight();
        } catch (err) {
          taken.push(describe(err, s));
        }
      }
      if (taken.length) {
        process.stderr.write(`[services] not starting anything: ${taken.join('\n[services] not starting anything: ')}\n`);
        return 1;
      }
      // jq runs the documented curl examples (and the test that runs them); not a service, so only a warning.
      try {
        ensureDebianPackages('tools', ['jq'], () => which('jq') !== undefined);
      } catch (err) {
        process.stderr.write(`[services] note: ${describe(err, { name: 'tools' } as Service)}\n`);
      }
      const failures: string[] = [];
      for (const s of services) {
        const t = Date.now();
        try {
          const state = await s.up();
          process.stderr.write(`[services] ${s.name.padEnd(8)} ${state} (${((Date.now() - t) / 1000).toFixed(1)}s)\n`);
        } catch (err) {
          failures.push(describe(err, s));
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
    case 'purge':
      for (const s of [...services].reverse()) {
        let state = await s.down().catch((e: unknown) => `error: ${e instanceof Error ? e.message : String(e)}`);
        if (cmd === 'purge') state += `; ${await s.purge().catch((e: unknown) => `error: ${e instanceof Error ? e.message : String(e)}`)}`;
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
      process.stderr.write('usage: npm run services -- up|down|status|env|purge [redis|postgres|mongo|ollama ...]\n');
      return 2;
  }
}

main(process.argv[2], process.argv.slice(3)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[services] ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
