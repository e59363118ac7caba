/**
 * Builds the Go test infrastructure from source through the Go module proxy:
 * Ollama (with its CPU backend, through cgo) and FerretDB v1. Binaries and
 * Go's module and build caches live in the user's cache folder, keyed by
 * version, so the first build is slow (Ollama: 10-15 min on 2 cores) and every
 * later clone on the machine reuses it in seconds.
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { log, run, runLogged, which, ServiceProblem } from './proc.ts';
import { settings, versions } from './settings.ts';

const goRoot = join(settings.cacheDir, 'go');

function goEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOMODCACHE: join(goRoot, 'mod'),
    GOCACHE: join(goRoot, 'build'),
    GOFLAGS: '-mod=mod',
    GOTOOLCHAIN: 'local',
    ...extra,
  };
}

function requireGo(service: string): void {
  if (!which('go')) {
    throw new ServiceProblem(service, 'the Go toolchain (>= 1.24) is needed to build it from source', 'install Go from your distribution or go.dev, put `go` on PATH, and run again');
  }
}

export function ollamaBinary(): string {
  return join(settings.cacheDir, 'ollama', `v${versions.ollama}`, 'bin', 'ollama');
}

export async function buildOllama(): Promise<string> {
  const bin = ollamaBinary();
  if (existsSync(bin)) return bin;
  requireGo('ollama');
  if (!which('gcc') || !which('g++')) throw new ServiceProblem('ollama', 'a C/C++ compiler is needed for its cgo backend', 'apt-get install -y build-essential');
  const staging = join(settings.cacheDir, 'ollama', `v${versions.ollama}`, 'staging');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const logFile = join(settings.cacheDir, 'logs', `ollama-v${versions.ollama}-build.log`);
  log('ollama', `building v${versions.ollama} from source (cold: 10-15 min on 2 cores); log: ${logFile}`);
  const t0 = Date.now();
  await runLogged('go', ['install', '-ldflags', `-s -w -X=github.com/ollama/ollama/version.Version=${versions.ollama}`, `github.com/ollama/ollama@v${versions.ollama}`], logFile, goEnv({ GOBIN: staging, CGO_ENABLED: '1' }));
  mkdirSync(join(bin, '..'), { recursive: true });
  renameSync(join(staging, 'ollama'), bin);
  rmSync(staging, { recursive: true, force: true });
  log('ollama', `built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return bin;
}

export function ferretBinary(): string {
  return join(settings.cacheDir, 'ferretdb', `v${versions.ferretdb}`, 'bin', 'ferretdb');
}

/**
 * `go install .../cmd/ferretdb@v1.24.2` panics at start-up because the module
 * zip lacks build/version/version.txt (FerretDB issue #2982), so we build from
 * a copy of the downloaded module with that file written.
 */
export async function buildFerret(): Promise<string> {
  const bin = ferretBinary();
  if (existsSync(bin)) return bin;
  requireGo('ferretdb');
  const logFile = join(settings.cacheDir, 'logs', `ferretdb-v${versions.ferretdb}-build.log`);
  log('ferretdb', `building v${versions.ferretdb} from source (cold: about 2 min); log: ${logFile}`);
  const t0 = Date.now();
  const info = JSON.parse(run('go', ['mod', 'download', '-json', `github.com/FerretDB/FerretDB@v${versions.ferretdb}`], { env: goEnv() })) as { Dir: string };
  const src = join(settings.cacheDir, 'ferretdb', `v${versions.ferretdb}`, 'src');
  rmSync(src, { recursive: true, force: true });
  cpSync(info.Dir, src, { recursive: true });
  run('chmod', ['-R', 'u+w', src]);
  writeFileSync(join(src, 'build', 'version', 'version.txt'), `v${versions.ferretdb}\n`);
  writeFileSync(join(src, 'build', 'version', 'package.txt'), 'parley\n');
  const out = `${bin}.tmp`;
  mkdirSync(join(bin, '..'), { recursive: true });
  await runLogged('go', ['build', '-trimpath', '-o', out, './cmd/ferretdb'], logFile, goEnv({ CGO_ENABLED: '0' }), src);
  chmodSync(out, 0o755);
  renameSync(out, bin);
  log('ferretdb', `built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return bin;
}
