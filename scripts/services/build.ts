/**
 * Builds the Go test infrastructure from source through the Go module proxy:
 * Ollama (with its CPU backend, through cgo), FerretDB v1 and, for the
 * object-storage tests only, MinIO. Binaries and
 * Go's module and build caches live in the user's cache folder, keyed by
 * version, so the first build is slow and every later clone on the machine
 * reuses it in seconds.
 *
 * Ollama's ggml picks its SIMD kernels at compile time (AVX2, FMA, AVX-512 are
 * chosen by the predefined `__AVX2__`-style macros), so cgo's default `-O2`
 * builds baseline x86-64 code that runs models 4-9x slower. We build for the
 * machine it runs on (`-O3 -march=native`) and key the binary by the exact
 * set of target features the compiler enabled, so a cache folder shared
 * between machines never hands one a binary with instructions it lacks. If
 * the native build fails, a portable build (cgo's defaults) is the fallback.
 */
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
    throw new ServiceProblem(
      service,
      'the Go toolchain (>= 1.24) is needed to build it from source',
      'install Go from your distribution or go.dev, put `go` on PATH, and run again',
    );
  }
}

/**
 * What a build targets: `native` (this CPU's features), `x86-64-v3` (AVX2 and FMA, the fallback on a
 * CPU that has them) or `portable` (cgo defaults).
 */
export interface OllamaFlavour {
  name: 'native' | 'x86-64-v3' | 'portable';
  /** Cache key: `native-<hash of enabled target features>`, `x86-64-v3` or `portable`. */
  key: string;
  cflags: string;
}

/** The target features `gcc -march=<march>` enables (`-m<feature>`, plus its `-march=` and `-mtune=`), sorted. */
export function gccTargetFeatures(march: string): string[] {
  const out = run('gcc', [`-march=${march}`, '-Q', '--help=target']);
  const enabled = out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length >= 2 && p[0]!.startsWith('-m') && (p[1] === '[enabled]' || p[0] === '-march=' || p[0] === '-mtune='))
    .map((p) => (p[1] === '[enabled]' ? p[0]! : `${p[0]}${p[1]}`));
  return [...new Set(enabled)].sort();
}

/**
 * The target features `gcc -march=native` enables on this CPU. This is what
 * decides which instructions the binary may use, so it is the cache key;
 * /proc/cpuinfo's flags are the fallback when gcc cannot answer.
 */
export function nativeFeatures(): string[] {
  try {
    const enabled = gccTargetFeatures('native');
    if (enabled.length > 0) return enabled;
  } catch {
    /* fall through to cpuinfo */
  }
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  return [...new Set(flags.split(/\s+/).filter(Boolean))].sort();
}

/**
 * The compiler flags of the native build for these target features. AMX is switched off: with
 * `__AMX_INT8__` defined, v0.11.4's ggml-cpu.cpp calls ggml_backend_amx_buffer_type(), whose source
 * the cgo build does not compile, so on an Intel CPU with AMX (Sapphire Rapids and later) the link
 * fails ("undefined reference to ggml_backend_amx_buffer_type"), and the portable fallback, 4-9x
 * slower, used to take over.
 */
export function nativeCflags(features: readonly string[]): string {
  const off = features.filter((f) => f.startsWith('-mamx-')).map((f) => f.replace(/^-m/, '-mno-'));
  return ['-O3', '-march=native', ...off].join(' ');
}

export function ollamaFlavours(features: readonly string[] = nativeFeatures()): OllamaFlavour[] {
  const hash = createHash('sha256').update(features.join(' ')).digest('hex').slice(0, 12);
  const native: OllamaFlavour = { name: 'native', key: `native-${hash}`, cflags: nativeCflags(features) };
  const v3: OllamaFlavour = { name: 'x86-64-v3', key: 'x86-64-v3', cflags: '-O3 -march=x86-64-v3' };
  const portable: OllamaFlavour = { name: 'portable', key: 'portable', cflags: '-O2 -g' };
  if (settings.ollamaBuild === 'portable') return [portable];
  const hasV3 = ['-mavx2', '-mfma', '-mf16c', '-mbmi2', '-mlzcnt', '-mmovbe'].every((f) => features.includes(f));
  return hasV3 ? [native, v3, portable] : [native, portable];
}

export function ollamaBinary(flavour: OllamaFlavour): string {
  return join(settings.cacheDir, 'ollama', `v${versions.ollama}`, flavour.key, 'bin', 'ollama');
}

/** Where a flavour's failed build is recorded, with the flags it failed with. */
export function failureRecord(f: OllamaFlavour): string {
  return join(settings.cacheDir, 'ollama', `v${versions.ollama}`, `${f.key}.failed.json`);
}

/** A failure older than this is tried again: it may have been the network, a full disk or memory. */
const failureMemoryMs = 24 * 3600_000;

/**
 * The recorded failure of this flavour with these very flags, within the last day, if any: not
 * worth minutes of building again on every `up`.
 */
export function failedBefore(f: OllamaFlavour, now = Date.now()): string | undefined {
  try {
    const r = JSON.parse(readFileSync(failureRecord(f), 'utf8')) as { cflags?: string; at?: string; error?: string };
    const age = now - Date.parse(r.at ?? '');
    return r.cflags === f.cflags && age >= 0 && age < failureMemoryMs ? (r.error ?? 'failed') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first flavour, in order of speed, whose binary is cached or builds. A flavour that failed in
 * the last day with the same flags is passed over (the last, portable, is always tried); one whose
 * flags changed since is tried again, even when a slower fallback is cached. Without Go or a C
 * compiler, the fastest cached flavour is used.
 */
export async function buildOllama(): Promise<{ bin: string; flavour: OllamaFlavour }> {
  const flavours = ollamaFlavours();
  const toolchain = Boolean(which('go') && which('gcc') && which('g++'));
  if (!toolchain) {
    const cached = flavours.find((f) => existsSync(ollamaBinary(f)));
    if (cached) return { bin: ollamaBinary(cached), flavour: cached };
    requireGo('ollama');
    throw new ServiceProblem('ollama', 'a C/C++ compiler is needed for its cgo backend', 'apt-get install -y build-essential');
  }
  const failures: string[] = [];
  for (const f of flavours) {
    const bin = ollamaBinary(f);
    if (existsSync(bin)) return { bin, flavour: f };
    const last = f === flavours[flavours.length - 1];
    if (!last && failedBefore(f)) {
      failures.push(`${f.name}: failed in the last day with the same flags (${failureRecord(f)}; delete it to try again)`);
      log('ollama', `skipping the ${f.name} build, which failed in the last day with the same flags: ${failureRecord(f)}`);
      continue;
    }
    try {
      const built = await buildOllamaFlavour(f);
      rmSync(failureRecord(f), { force: true });
      return { bin: built, flavour: f };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      failures.push(`${f.name}: ${error}`);
      mkdirSync(join(failureRecord(f), '..'), { recursive: true });
      writeFileSync(failureRecord(f), `${JSON.stringify({ cflags: f.cflags, at: new Date().toISOString(), error }, null, 2)}\n`);
      if (!last) log('ollama', `the ${f.name} build failed; falling back to a slower build`);
    }
  }
  throw new ServiceProblem('ollama', `could not build v${versions.ollama}:\n${failures.join('\n')}`, 'read the build logs named above');
}

export async function buildOllamaFlavour(f: OllamaFlavour): Promise<string> {
  const bin = ollamaBinary(f);
  const staging = join(settings.cacheDir, 'ollama', `v${versions.ollama}`, `${f.key}.staging`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const logFile = join(settings.cacheDir, 'logs', `ollama-v${versions.ollama}-${f.key}-build.log`);
  log('ollama', `building v${versions.ollama} (${f.name}: ${f.cflags}) from source; cold: 3-10 min on 2 cores; log: ${logFile}`);
  const t0 = Date.now();
  await runLogged(
    'go',
    [
      'install',
      '-trimpath',
      '-ldflags',
      `-s -w -X=github.com/ollama/ollama/version.Version=${versions.ollama}`,
      `github.com/ollama/ollama@v${versions.ollama}`,
    ],
    logFile,
    goEnv({ GOBIN: staging, CGO_ENABLED: '1', CGO_CFLAGS: f.cflags, CGO_CXXFLAGS: f.cflags }),
    undefined,
    { service: 'ollama', expectedSeconds: 240 },
  );
  mkdirSync(join(bin, '..'), { recursive: true });
  // The binary must at least start on this machine before it is cached.
  run(join(staging, 'ollama'), ['--version'], { env: { ...process.env, OLLAMA_HOST: '127.0.0.1:1' } });
  renameSync(join(staging, 'ollama'), bin);
  writeFileSync(
    join(bin, '..', 'build.json'),
    `${JSON.stringify({ version: versions.ollama, flavour: f.name, cflags: f.cflags, features: f.name === 'native' ? nativeFeatures() : [], builtAt: new Date().toISOString(), seconds: Math.round((Date.now() - t0) / 1000) }, null, 2)}\n`,
  );
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
  await runLogged('go', ['build', '-trimpath', '-o', out, './cmd/ferretdb'], logFile, goEnv({ CGO_ENABLED: '0' }), src, {
    service: 'ferretdb',
    expectedSeconds: 90,
  });
  chmodSync(out, 0o755);
  renameSync(out, bin);
  log('ferretdb', `built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return bin;
}

export function minioBinary(): string {
  return join(settings.cacheDir, 'minio', `v${versions.minio}`, 'bin', 'minio');
}

/**
 * MinIO, for the vector store on object storage: `go install` of the pinned
 * pseudo-version into the cache (cold: several minutes on 2 cores; its module
 * graph is large). Pure Go, no cgo.
 */
export async function buildMinio(): Promise<string> {
  const bin = minioBinary();
  if (existsSync(bin)) return bin;
  requireGo('minio');
  const logFile = join(settings.cacheDir, 'logs', `minio-v${versions.minio}-build.log`);
  log('minio', `building ${versions.minio} from source (cold: about 5-10 min); log: ${logFile}`);
  const t0 = Date.now();
  const staging = join(settings.cacheDir, 'minio', `v${versions.minio}`, 'staging');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  await runLogged('go', ['install', '-trimpath', `github.com/minio/minio@v${versions.minio}`], logFile, goEnv({ CGO_ENABLED: '0', GOBIN: staging }), staging, {
    service: 'minio',
    expectedSeconds: 420,
  });
  mkdirSync(join(bin, '..'), { recursive: true });
  renameSync(join(staging, 'minio'), bin);
  rmSync(staging, { recursive: true, force: true });
  log('minio', `built in ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  return bin;
}
