/**
 * A real MinIO for the object-storage tests: the service manager's build
 * (scripts/services/build.ts, from the Go module proxy into the cache), on
 * free loopback ports, with its data under a temporary folder. `bucket()`
 * creates a bucket through the S3 API (a SigV4-signed PUT, written here so
 * the tests need no AWS SDK). The caller owns its lifetime: `stop()` ends the
 * server and removes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMinio } from '../../scripts/services/build.ts';
import { freePort } from './private-services.ts';

export interface Minio {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  /** Creates a bucket (PUT /<name>); throws unless MinIO answers 200. */
  bucket(name: string): Promise<void>;
  /** The PARLEY_LANCEDB_S3_* variables that point Parley at this server. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** The Authorization header of an S3 request with an empty body, signed with AWS Signature V4. */
function signV4(opts: { method: string; host: string; path: string; accessKey: string; secretKey: string; region: string; now: Date }): Record<string, string> {
  const amzDate = opts.now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = sha256('');
  const signedHeaders = 'host;x-amz-content-sha256;x-amz-date';
  const canonical = [
    opts.method,
    opts.path,
    '',
    `host:${opts.host}`,
    `x-amz-content-sha256:${payloadHash}`,
    `x-amz-date:${amzDate}`,
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${opts.region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${opts.secretKey}`, day), opts.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return {
    'x-amz-date': amzDate,
    'x-amz-content-sha256': payloadHash,
    authorization: `AWS4-HMAC-SHA256 Credential=${opts.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

export async function startMinio(): Promise<Minio> {
  const bin = await buildMinio();
  const dir = mkdtempSync(join(tmpdir(), 'parley-minio-'));
  const [port, consolePort] = [await freePort(), await freePort()];
  const host = `127.0.0.1:${port}`;
  const endpoint = `http://${host}`;
  const accessKey = 'parley-test';
  const secretKey = `parley-test-${process.pid}-secret`;
  const region = 'us-east-1';
  let output = '';
  const child: ChildProcess = spawn(bin, ['server', join(dir, 'data'), '--address', host, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'], {
    env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => void (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => void (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }

  // Ready when its readiness endpoint answers 200 (it also answers before the drive is formatted: 503).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`minio exited with ${child.exitCode}: ${output}`);
    }
    const ok = await fetch(`${endpoint}/minio/health/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`minio did not become ready within 60 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    endpoint,
    accessKey,
    secretKey,
    region,
    async bucket(name: string) {
      const path = `/${name}`;
      const res = await fetch(`${endpoint}${path}`, {
        method: 'PUT',
        headers: signV4({ method: 'PUT', host, path, accessKey, secretKey, region, now: new Date() }),
      });
      if (res.status !== 200) throw new Error(`minio: creating bucket ${name} answered ${res.status}: ${await res.text()}`);
    },
    env: () => ({
      PARLEY_LANCEDB_S3_ENDPOINT: endpoint,
      PARLEY_LANCEDB_S3_ACCESS_KEY_ID: accessKey,
      PARLEY_LANCEDB_S3_SECRET_ACCESS_KEY: secretKey,
      PARLEY_LANCEDB_S3_REGION: region,
    }),
    stop,
  };
}
