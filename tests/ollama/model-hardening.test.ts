/**
 * Issue 16's model findings, each pinned by a test that failed before the
 * fix: impossible names answered 503 (Ollama's 500 "invalid model path"
 * passed on as our outage), pulls from any registry host and with
 * `insecure`, keep_alive without a bound, and model names from requests used
 * as Prometheus labels as they came. Real API, real workers, real Ollama.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultOf, pullFaultOf } from '../../platform/ollama/index.ts';
import { canonicalModelName } from '../../shared/index.ts';
import { startStack, type Stack, type TestUser } from '../harness.ts';

const host = process.env.OLLAMA_HOST!.includes('://') ? process.env.OLLAMA_HOST!.replace(/\/+$/, '') : `http://${process.env.OLLAMA_HOST}`;
const chatModel = process.env.PARLEY_CHAT_MODEL ?? 'smollm2:135m';
const id = randomUUID().slice(0, 8);
/** Made, used and deleted by the metric-label test. */
const fleeting = `parley-hard-${id}:gone`;
const allowedRegistry = 'models.internal:5000';
const enc = encodeURIComponent;

let stack: Stack;
let admin: TestUser;
let operator: TestUser;

beforeAll(async () => {
  stack = await startStack({
    workers: ['llm'],
    env: {
      PARLEY_ROLE_CAPS: JSON.stringify({ operator: { maxKeepAliveS: 60 } }),
      PARLEY_MODEL_PULL_REGISTRIES: allowedRegistry,
      PARLEY_MODEL_PULL_INSECURE_REGISTRIES: allowedRegistry,
    },
  });
  [admin, operator] = await Promise.all([stack.user('admin'), stack.user('operator')]);
});

afterAll(async () => {
  await fetch(`${host}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: fleeting }) }).catch(() => {});
  await stack?.stop();
});

describe('names Ollama cannot parse', () => {
  // Schemathesis: both answered 503 SERVICE_UNAVAILABLE.
  it('answers 400 for a create from an impossible name and a copy to one', async () => {
    const create = await stack.request('POST', '/v1/models', { user: operator, body: { name: `parley-hard-${id}:x`, from: 'n7-ReLG93/..f7uljl8tde2' } });
    expect(create.status).toBe(400);
    expect(create.json).toMatchObject({ code: 'VALIDATION_FAILED', errors: [expect.objectContaining({ path: 'from' })] });
    const copy = await stack.request('POST', `/v1/models/${enc(chatModel)}/copy`, { user: admin, body: { destination: 'YZFk7:' } });
    expect(copy.status).toBe(400);
    expect(copy.json.errors[0].path).toBe('destination');
    for (const name of ['../../etc/passwd', 'YZFk7:', 'x@sha256:abc']) {
      const r = await stack.request('GET', `/v1/models/${enc(name)}`, { user: admin });
      expect(r.status, name).toBe(400);
    }
  });

  it("maps Ollama's answers to what they mean: its 500 for a bad name is the caller's mistake", () => {
    expect(faultOf(500, 'invalid model path')).toBe('invalid');
    expect(faultOf(500, 'destination "x:" is invalid')).toBe('invalid');
    expect(faultOf(400, 'invalid model name')).toBe('invalid');
    expect(faultOf(404, "model 'x:1' not found")).toBe('not-found');
    expect(faultOf(500, 'llama runner process has terminated')).toBe('failed');
    expect(pullFaultOf(500, 'pull model manifest: Get "https://r/v2/x": dial tcp: lookup r: no such host')).toBe('registry-unreachable');
    expect(pullFaultOf(500, 'pull model manifest: file does not exist')).toBe('not-found');
  });

  it('canonicalises every alias of a name to one form', () => {
    for (const n of ['x', 'x:latest', 'library/x', 'LIBRARY/X:Latest', 'registry.ollama.ai/library/x:latest'])
      expect(canonicalModelName(n), n).toBe('x:latest');
    expect(canonicalModelName('team/x:1')).toBe('team/x:1');
    expect(canonicalModelName('models.internal:5000/team/x:1')).toBe('models.internal:5000/team/x:1');
  });
});

describe('pull policy', () => {
  async function pullRows(model: string): Promise<number> {
    const [row] = await stack.api.db('jobs').where({ kind: 'model.pull' }).whereRaw(`input->>'model' = ?`, [model]).count({ n: '*' });
    return Number(row!.n);
  }

  // Operators could make every Ollama host fetch from any address, internal ones included.
  it('refuses a registry host that is not on PARLEY_MODEL_PULL_REGISTRIES, and records the refusal', async () => {
    for (const model of ['127.0.0.1:6390/library/x:1', 'metadata.internal/ns/m:1', `10.0.0.1:5000/team/${id}:1`]) {
      const r = await stack.request('POST', '/v1/models/pull', { user: operator, body: { model } });
      expect(r.status, model).toBe(403);
      expect(r.json).toMatchObject({ code: 'FORBIDDEN', errors: [{ path: 'model', message: 'registry host not allowed' }] });
      expect(await pullRows(canonicalModelName(model))).toBe(0);
    }
    const audit = await stack.api.db('audit_events').where({ action: 'model.pull', target_id: '127.0.0.1:6390/library/x:1', actor_id: operator.id });
    expect(audit.map((a) => a.outcome)).toEqual(['failure']);
  });

  it('refuses `insecure` unless the registry host is on PARLEY_MODEL_PULL_INSECURE_REGISTRIES', async () => {
    for (const model of [`parley-hard-${id}-plain`, `registry.ollama.ai/library/parley-hard-${id}`]) {
      const r = await stack.request('POST', '/v1/models/pull', { user: operator, body: { model, insecure: true } });
      expect(r.status, model).toBe(403);
      expect(r.json.errors[0].path).toBe('insecure');
    }
  });

  it('accepts a listed registry host, insecure included, and the default registry written out', async () => {
    for (const body of [{ model: `${allowedRegistry}/team/parley-${id}:1`, insecure: true }, { model: `registry.ollama.ai/library/parley-hard-${id}` }]) {
      const r = await stack.request('POST', '/v1/models/pull', { user: operator, body });
      expect(r.status, body.model).toBe(202);
      expect(r.json.model).toBe(canonicalModelName(body.model));
      // No models worker here: cancel it so no other suite's sweeper adopts it.
      expect((await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: operator })).json.state).toBe('cancelled');
    }
  });
});

describe('keep_alive on a model load', () => {
  it("is bounded by the role's maxKeepAliveS", async () => {
    const r = await stack.request('POST', `/v1/models/${enc(chatModel)}/load`, { user: operator, body: { keep_alive: -1 } });
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'LIMIT_EXCEEDED', cap: 'maxKeepAliveS', limit: 60, errors: [{ path: 'keep_alive' }] });
    expect((await stack.request('POST', `/v1/models/${enc(chatModel)}/load`, { user: operator, body: { keep_alive: '10m' } })).status).toBe(422);
  });
});

describe('model names as metric labels', () => {
  async function labels(metric: 'queueWait' | 'tokens'): Promise<Set<string>> {
    const m = await stack.workers!.metrics[metric].get();
    return new Set(m.values.map((v) => String(v.labels.model)));
  }

  it('labels every alias of an installed model with its canonical name', async () => {
    const aliases = [`library/${chatModel}`, chatModel.toUpperCase(), `registry.ollama.ai/library/${chatModel}`];
    // At once: the shared Ollama can be slow, and the order does not matter here.
    await Promise.all(
      aliases.map(async (model) => {
        const r = await stack.request('POST', '/v1/jobs', {
          user: admin,
          body: { kind: 'llm.chat', input: { model, messages: [{ role: 'user', content: 'Hi' }], options: { num_predict: 1 }, cache: 'bypass' } },
        });
        expect(r.status, r.text).toBe(202);
        expect((await stack.waitForJob(r.json.id, admin, 240_000)).state).toBe('completed');
      }),
    );
    expect([...(await labels('tokens'))]).toEqual([chatModel]);
    expect(await labels('queueWait')).not.toContain(`library/${chatModel}`);
  }, 300_000);

  it('labels a model no host has as `other`', async () => {
    const made = await fetch(`${host}/api/copy`, { method: 'POST', body: JSON.stringify({ source: chatModel, destination: fleeting }) });
    expect(made.status).toBe(200);
    // The worker labels by its status view: let it see the new model before the first run.
    await stack.workers!.ollama.status.refresh();
    const r = await stack.request('POST', '/v1/jobs', {
      user: admin,
      body: {
        kind: 'llm.chat',
        input: { model: fleeting, messages: [{ role: 'user', content: 'Tell a long story.' }], options: { num_predict: 400 }, cache: 'bypass' },
      },
    });
    expect(r.status, r.text).toBe(202);
    // Cancelled (queued or running), so it can be retried below.
    expect((await stack.request('DELETE', `/v1/jobs/${r.json.id}`, { user: admin })).json.state).toBe('cancelled');
    // Gone from Ollama; a manual retry skips submit checks, so the worker sees a name no host has.
    await fetch(`${host}/api/delete`, { method: 'DELETE', body: JSON.stringify({ model: fleeting }) });
    await stack.workers!.ollama.status.refresh();
    const waits = async (model: string) =>
      (await stack.workers!.metrics.queueWait.get()).values.find(
        (v) => v.labels.kind === 'llm.chat' && v.labels.model === model && v.metricName?.endsWith('_count'),
      )?.value ?? 0;
    const [other, named] = [await waits('other'), await waits(fleeting)];
    expect((await stack.request('POST', `/v1/jobs/${r.json.id}/retry`, { user: admin })).status).toBe(202);
    expect((await stack.waitForJob(r.json.id, admin)).error.code).toBe('UPSTREAM_REJECTED');
    expect(await waits('other')).toBe(other + 1);
    expect(await waits(fleeting)).toBe(named);
    expect(stack.workers!.ollama.status.modelLabel(`no-such-${id}:1`)).toBe('other');
  });
});
