/**
 * Model management routes. Names go in the path percent-encoded
 * (`/v1/models/library%2Fllama3%3A8b`); Express decodes them.
 *
 * Mount these after any other fixed /v1/models/<word> path (e.g.
 * /v1/models/status): `GET /v1/models/:name` would otherwise answer for it.
 */
import {
  CopyModelBody,
  CreateModelBody,
  DeletedModel,
  LoadModelBody,
  ModelChange,
  ModelDetails,
  ModelList,
  ModelLoadState,
  PullModelAccepted,
  PullModelBody,
  RunningModels,
  ModelNameParams,
} from '../../shared/index.ts';
import {
  copyModel,
  createModel,
  deleteModel,
  getModel,
  listModels,
  loadModel,
  pullModel,
  runningModels,
  unloadModel,
  type ModelDeps,
} from '../domain/models.ts';
import { problem, route, type Route } from '../http/route.ts';

const upstream = problem('No Ollama host could answer (a host that is down is reported per host when another one answered)');
const invalid = problem('Invalid body or name (Ollama refused it)');

export function modelRoutes(deps: ModelDeps): Route[] {
  return [
    route({
      method: 'get',
      path: '/v1/models',
      operationId: 'listModels',
      tags: ['models'],
      access: 'models:read',
      summary:
        'Installed models on every Ollama host, once per model: family, size, quantization, context length, capabilities, digest, whether each is loaded, and which host has it. Hosts that did not answer are listed in `hosts`.',
      responses: { 200: { description: 'Installed models', schema: ModelList }, 503: upstream },
      async handle() {
        return { status: 200, body: await listModels(deps) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/models',
      operationId: 'createModel',
      tags: ['models'],
      access: 'models:manage',
      summary:
        'Create a model from an installed one with its own system prompt, template or parameters (a Modelfile as JSON), on every host that has the source; per-host results.',
      body: CreateModelBody,
      responses: {
        201: { description: 'Created on at least one host', schema: ModelChange },
        400: problem('Invalid body, or `from` is not installed on any host'),
        409: problem('The name exists on some host'),
        503: upstream,
      },
      async handle({ body, actor, ip, userAgent }) {
        const model = await createModel(deps, actor, body, { ip, userAgent });
        return { status: 201, body: model, headers: { Location: `/v1/models/${encodeURIComponent(model.name)}` } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/models/pull',
      operationId: 'pullModel',
      tags: ['models'],
      access: 'models:manage',
      summary:
        'Pull a model from its registry into every host, as a model.pull job. A pull of the same model already queued or running is returned instead. A registry host of its own, or `insecure`, needs the host on an admin-configured allow-list.',
      body: PullModelBody,
      responses: {
        202: { description: 'Accepted (or deduplicated)', schema: PullModelAccepted },
        400: problem('Invalid body, or not a model name Ollama can have'),
        403: problem('The registry host, or an insecure pull from it, is not allowed'),
        503: problem('Not accepted'),
      },
      async handle({ body, actor, ip, userAgent }) {
        const job = await pullModel(deps, actor, body, { ip, userAgent });
        return { status: 202, body: job, headers: { Location: job.links.self } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/models/running',
      operationId: 'listRunningModels',
      tags: ['models'],
      access: 'models:read',
      summary: 'Models loaded in memory now on every host (one item per host and model), with their memory and when they expire.',
      responses: { 200: { description: 'Loaded models', schema: RunningModels }, 503: upstream },
      async handle() {
        return { status: 200, body: await runningModels(deps) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/models/:name',
      operationId: 'getModel',
      tags: ['models'],
      access: 'models:read',
      summary: 'One installed model, with its template, system prompt and default parameters.',
      params: ModelNameParams,
      responses: {
        200: { description: 'The model', schema: ModelDetails },
        400: problem('Not a model name Ollama can have'),
        404: problem('Not installed on any host that answered'),
        503: upstream,
      },
      async handle({ params }) {
        return { status: 200, body: await getModel(deps, params.name) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/models/:name',
      operationId: 'deleteModel',
      tags: ['models'],
      access: 'models:admin',
      summary: 'Delete a model from every host that has it (admin; audited); per-host results. The configured chat and embedding models are refused.',
      params: ModelNameParams,
      responses: {
        200: { description: 'Deleted from at least one host', schema: DeletedModel },
        400: invalid,
        404: problem('Not installed on any host that answered'),
        409: problem('A configured model'),
        503: upstream,
      },
      async handle({ params, actor, ip, userAgent }) {
        return { status: 200, body: await deleteModel(deps, actor, params.name, { ip, userAgent }) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/models/:name/copy',
      operationId: 'copyModel',
      tags: ['models'],
      access: 'models:admin',
      summary: 'Copy a model under a new name on every host that has it (admin; audited); per-host results.',
      params: ModelNameParams,
      body: CopyModelBody,
      responses: {
        201: { description: 'Copied on at least one host', schema: ModelChange },
        400: invalid,
        404: problem('Not installed on any host that answered'),
        409: problem('The destination exists on some host'),
        503: upstream,
      },
      async handle({ params, body, actor, ip, userAgent }) {
        const model = await copyModel(deps, actor, params.name, body, { ip, userAgent });
        return { status: 201, body: model, headers: { Location: `/v1/models/${encodeURIComponent(model.name)}` } };
      },
    }),
    route({
      method: 'post',
      path: '/v1/models/:name/load',
      operationId: 'loadModel',
      tags: ['models'],
      access: 'models:manage',
      summary: "Load a model into memory for keep_alive (default 30m) on every host that has it; keep_alive is bounded by the role's maxKeepAliveS.",
      params: ModelNameParams,
      body: LoadModelBody,
      responses: {
        200: { description: 'Loaded on at least one host', schema: ModelLoadState },
        400: invalid,
        404: problem('Not installed on any host that answered'),
        422: problem('keep_alive above the role cap'),
        503: upstream,
      },
      async handle({ params, body, actor, ip, userAgent }) {
        return { status: 200, body: await loadModel(deps, actor, params.name, body, { ip, userAgent }) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/models/:name/unload',
      operationId: 'unloadModel',
      tags: ['models'],
      access: 'models:manage',
      summary: 'Unload a model from memory now (keep_alive 0) on every host where it is loaded.',
      params: ModelNameParams,
      responses: {
        200: { description: 'Unloaded', schema: ModelLoadState },
        400: invalid,
        404: problem('Not installed on any host that answered'),
        503: upstream,
      },
      async handle({ params, actor, ip, userAgent }) {
        return { status: 200, body: await unloadModel(deps, actor, params.name, { ip, userAgent }) };
      },
    }),
  ];
}
