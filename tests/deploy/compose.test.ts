/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine:
 * the compose file validates against the Compose Specification's JSON schema
 * (the copy the `dclint` package ships, installed from npm, never copied into
 * this repo), every variable it sets on a Parley process is one
 * platform/config.ts knows, and its wiring holds together (dependencies,
 * healthchecks, secrets, mounted files). `docker compose config` runs too
 * where the Compose plugin is installed.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { knownEnvVars, loadConfig } from '../../platform/config.ts';

const root = join(import.meta.dirname, '..', '..');
const require = createRequire(import.meta.url);
const schemaPath = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');

/**
 * Compose interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?message}`, `${VAR?message}`), applied to every string of the file.
 */
function interpolate(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (whole, name?: string, op?: string, arg?: string, bare?: string) => {
        if (whole === '$$') return '$';
        if (bare) return env[bare] ?? '';
        const v = env[name!];
        const unset = op?.startsWith(':') ? !v : v === undefined;
        if (op?.endsWith('-')) return unset ? (arg ?? '') : v!;
        if (op?.endsWith('?') && unset) throw new Error(`compose: ${name} is required: ${arg}`);
        return v ?? '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  return value;
}

type Service = {
  build?: unknown;
  image?: string;
  command?: string[];
  environment?: Record<string, string> | string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  secrets?: string[];
  volumes?: string[];
  deploy?: { replicas?: number };
  profiles?: string[];
};
type ComposeFile = { services: Record<string, Service>; secrets: Record<string, { file: string }>; volumes: Record<string, unknown> };

const raw = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as unknown;
const compose = interpolate(raw, {}) as ComposeFile;
// The schema is draft-07 (Ajv's default draft); its `$schema` names the https form, which Ajv does not register.
const { $schema: _draft, ...schema } = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
/** Services that run our image: the ones whose variables config.ts must know. */
const parleyServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
const envOf = (s: Service): Record<string, string> =>
  Array.isArray(s.environment) ? Object.fromEntries(s.environment.map((e) => [e.split('=')[0]!, e.split('=').slice(1).join('=')])) : (s.environment ?? {});

describe('docker-compose.yml', () => {
  it('validates against the Compose Specification schema', () => {
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('is refused by the same schema when a service is malformed (the validator is live)', () => {
    const broken = structuredClone(compose);
    (broken.services.api as Record<string, unknown>).healthcheck = { test: ['CMD', 'true'], every: '10s' };
    broken.services.workers!.depends_on = { migrate: { condition: 'service_finished' } };
    expect(validate(broken)).toBe(false);
    const paths = (validate.errors ?? []).map((e) => e.instancePath);
    expect(paths).toContain('/services/api/healthcheck');
    expect(paths).toContain('/services/workers/depends_on/migrate/condition');
  });

  it('sets only variables platform/config.ts knows on Parley processes, and they parse', () => {
    expect(parleyServices.map(([name]) => name).sort()).toEqual(['api', 'migrate', 'workers']);
    const known = new Set(knownEnvVars());
    for (const [name, service] of parleyServices) {
      const env = envOf(service);
      expect(Object.keys(env).length, name).toBeGreaterThan(5);
      expect(
        Object.keys(env).filter((k) => !known.has(k)),
        `unknown variables on ${name}`,
      ).toEqual([]);
      // The values parse: only the *_FILE secrets (absent here) are left out.
      const plain = Object.fromEntries(Object.entries(env).filter(([k]) => !k.endsWith('_FILE')));
      const config = loadConfig(plain);
      expect(config.env).toBe('production');
      expect(config.workerOps).toEqual({ port: 9464, host: '0.0.0.0' });
    }
  });

  it('knows a misspelt variable is not one config.ts reads (the check is live)', () => {
    const known = new Set(knownEnvVars());
    for (const k of ['DATABASE_URL', 'DATABASE_PASSWORD_FILE', 'PARLEY_WORKER_PORT', 'PARLEY_METRICS_TOKEN_FILE']) expect(known.has(k), k).toBe(true);
    for (const k of ['PARLEY_WORKERS_PORT', 'DATABASE_URI', 'PARLEY_CHAT_MODEL_FILE']) expect(known.has(k), k).toBe(false);
  });

  it('runs 2 API and 2 worker replicas from the Dockerfile, after a one-shot migration', () => {
    const { api, workers, migrate } = compose.services;
    expect(api!.deploy?.replicas).toBe(2);
    expect(workers!.deploy?.replicas).toBe(2);
    expect(migrate!.restart).toBe('no');
    expect(migrate!.command).toEqual(['node', '--import', 'tsx', 'scripts/migrate.ts', 'latest']);
    expect(api!.command).toEqual(['node', '--import', 'tsx', 'api/main.ts']);
    expect(workers!.command).toEqual(['node', '--import', 'tsx', 'workers/main.ts']);
    for (const s of [api!, workers!]) expect(s.depends_on?.migrate).toEqual({ condition: 'service_completed_successfully' });
    expect(workers!.depends_on?.['ollama-models']).toEqual({ condition: 'service_completed_successfully' });
    // The workers' healthcheck asks their own ops port, the one config.ts gives them.
    expect(workers!.healthcheck!.test.join(' ')).toContain(`:${envOf(workers!).PARLEY_WORKER_PORT}/healthz`);
    expect(api!.healthcheck!.test.join(' ')).toContain(`:${envOf(api!).PORT}/healthz`);
  });

  it('runs Redis with AOF and noeviction, Postgres, a real MongoDB and Ollama with its models pulled', () => {
    const s = compose.services;
    expect(s.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']));
    expect(s.postgres!.image).toMatch(/^postgres:/);
    expect(s.mongo!.image).toMatch(/^mongo:/);
    expect(s.ollama!.image).toMatch(/^ollama\/ollama:/);
    const pull = (s['ollama-models']!.command ?? []).join(' ');
    expect(pull).toMatch(/ollama pull "\$CHAT_MODEL" && ollama pull "\$EMBED_MODEL"/);
    expect(envOf(s['ollama-models']!)).toMatchObject({ CHAT_MODEL: 'smollm2:135m', EMBED_MODEL: 'all-minilm' });
    expect(s.prometheus!.profiles).toEqual(['monitoring']);
    expect(s.grafana!.profiles).toEqual(['monitoring']);
  });

  it('waits only on healthchecks that exist and on one-shot steps, and names only declared services, secrets and volumes', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        if (condition === 'service_healthy') expect(compose.services[dep]!.healthcheck, `${dep} needs a healthcheck for ${name}`).toBeDefined();
        if (condition === 'service_completed_successfully') expect(compose.services[dep]!.restart, `${dep} must be one-shot`).toBe('no');
      }
      if (service.restart !== 'no') expect(service.healthcheck, `${name} runs long and needs a healthcheck`).toBeDefined();
      for (const secret of service.secrets ?? []) expect(compose.secrets[secret], `${name}: secret ${secret}`).toBeDefined();
      for (const v of service.volumes ?? []) {
        const [source] = v.split(':') as [string];
        if (source.startsWith('./')) expect(existsSync(join(root, source)), `${name} mounts ${source}`).toBe(true);
        else expect(compose.volumes[source], `${name}: volume ${source}`).toBeDefined();
      }
    }
    // Secret values live in files outside git; the file only names them.
    for (const { file } of Object.values(compose.secrets)) expect(file).toMatch(/^\.\/secrets\//);
    expect(readFileSync(join(root, '.gitignore'), 'utf8')).toMatch(/^secrets\/$/m);
  });

  it('provisions every dashboard and the alert rules it mounts', () => {
    const dashboards = readdirSync(join(root, 'dashboards')).filter((f) => f.endsWith('.json'));
    expect(dashboards.length).toBeGreaterThanOrEqual(1);
    const prometheus = parse(readFileSync(join(root, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; dns_sd_configs: { names: string[]; port: number }[] }[];
      rule_files: string[];
    };
    const targets = prometheus.scrape_configs.map((c) => `${c.dns_sd_configs[0]!.names[0]}:${c.dns_sd_configs[0]!.port}`);
    expect(targets.sort()).toEqual([`api:${envOf(compose.services.api!).PORT}`, `workers:${envOf(compose.services.workers!).PARLEY_WORKER_PORT}`]);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const lines = dockerfile.split('\n').filter((l) => !l.trim().startsWith('#'));

  it('builds in stages, installs production dependencies only, runs as a non-root user with a healthcheck', () => {
    expect(lines.filter((l) => /^FROM\s/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
    const users = lines.filter((l) => /^USER\s/.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)$/);
    expect(lines.some((l) => /^HEALTHCHECK\s/.test(l))).toBe(true);
    // node itself is PID 1, so SIGTERM reaches the graceful shutdown.
    expect(lines.find((l) => /^CMD\s/.test(l))).toMatch(/^CMD \["node"/);
  });

  it('bakes in no secret and copies everything the processes import', () => {
    expect(lines.filter((l) => /^(ENV|ARG)\s/.test(l)).join('\n')).not.toMatch(/PASSWORD|TOKEN|SECRET|_URL/);
    const copied = lines.filter((l) => /^COPY\s/.test(l)).flatMap((l) => l.replace(/--\S+/g, '').split(/\s+/).slice(1, -1));
    for (const dir of ['shared', 'platform', 'api', 'workers', 'migrations']) expect(copied, dir).toContain(dir);
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8');
    for (const p of ['.env', 'secrets', '.data', '**/node_modules']) expect(ignored.split('\n')).toContain(p);
  });
});
