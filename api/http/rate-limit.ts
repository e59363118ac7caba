/**
 * Rate limits, counted in Redis so every API process shares one budget
 * (express-rate-limit over rate-limit-redis: a fixed window per key, INCR +
 * PEXPIRE in one Lua script). On a single Redis, the counts of concurrent
 * requests share pipelines (platform/connections sharedPipeline).
 *
 * Limiters and their Redis keys (`<prefix>` is PARLEY_KEY_PREFIX, so test
 * stacks and deployments sharing a Redis never share buckets):
 *   token-ip        `<prefix>:rl:token-ip:<ip>`            POST /v1/auth/token, any grant
 *   token-username  `<prefix>:rl:token-username:<sha256>`  password grants for one username,
 *                                                           failures only (a success is given back)
 *   password-change (the token-username bucket)            wrong current passwords on POST /v1/auth/password,
 *                                                           by the session user's username
 *   jobs-read       `<prefix>:rl:jobs-read:<subject>`      GET on /v1/jobs*, SSE included
 *   jobs-write      `<prefix>:rl:jobs-write:<subject>`     every other method on /v1/jobs*
 *   api-read        `<prefix>:rl:api-read:<subject>`       GET on the rest of /v1 (agents, discussions and
 *                                                           their SSE, models, usage, auth, admin, code,
 *                                                           collections, knowledge)
 *   api-write       `<prefix>:rl:api-write:<subject>`      every other method there, but POST /v1/auth/token
 * where <subject> is `user:<id>`, `key:<api key id>` or, without credentials,
 * `ip:<ip>`. A job or api limit is the one configured for the caller's role;
 * jobs and the rest of the API have separate budgets, so chatting in a room
 * cannot starve job submission or the other way round.
 * Usernames are hashed so Redis never holds what someone typed into a login form.
 *
 * The token limiters run before the route, so a limited login never reaches
 * argon2: at most `perUsername` hash computations per username per window.
 *
 * Every counted response carries draft-8 `RateLimit` and `RateLimit-Policy`
 * (draft-ietf-httpapi-ratelimit-headers); a limited one is 429 with
 * `Retry-After` and a RATE_LIMITED problem+json body. If Redis cannot count,
 * the request is refused with 503 REDIS_UNAVAILABLE (and Retry-After) rather
 * than let through unlimited.
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { rateLimit, ipKeyGenerator, type Options } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Config } from '../../platform/config.ts';
import { sharedPipeline } from '../../platform/connections/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { Actor } from '../auth/permissions.ts';
import { AppError } from '../domain/errors.ts';
import { sendProblem } from './errors.ts';
import type { Authenticate } from './mount.ts';

export interface RateLimitDeps {
  redis: Redis;
  prefix: string;
  limits: Config['rateLimits'];
  /** The request authenticator; it must memoise per request, since the route authenticates again. */
  authenticate: Authenticate;
  log: Logger;
  /** Called once per 429, with the limiter's name. */
  onLimited?: (limiter: string) => void;
}

type LimitClass = keyof Config['rateLimits']['jobs']['read'];

/**
 * The store's commands. Each names its key, so a Redis Cluster client routes it to the key's node;
 * `SCRIPT LOAD` names none, so on a cluster it goes to every master (the EVALSHA that follows may run
 * on any of them).
 */
async function sendCommand(redis: Redis, [command, ...args]: string[]): Promise<RedisReply> {
  const masters = (redis as { nodes?: (role: 'master') => Redis[] }).nodes?.('master');
  if (masters && command!.toUpperCase() === 'SCRIPT' && args[0]?.toUpperCase() === 'LOAD') {
    // The reply is the script's SHA1 whatever the node; a node that missed the load answers the
    // EVALSHA with NOSCRIPT, and the store loads the script again then. So a failed load (a node
    // restarting, or the process shutting down) is never an error here.
    await Promise.allSettled(masters.map((n) => n.call(command!, ...args)));
    return createHash('sha1').update(args[1]!).digest('hex');
  }
  if (masters) return redis.call(command!, ...args) as Promise<RedisReply>;
  // On a single Redis the counts of concurrent requests share pipelines; each keeps its own reply or error
  // (a NOSCRIPT reloads that limiter's script).
  const [err, reply] = (await sharedPipeline(redis)([[command!, ...args]]))[0]!;
  if (err) throw err;
  return reply as RedisReply;
}

const clientIp = (req: Request) => ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? 'unknown');

/** Every limiter's name, as `parley_rate_limited_total{limiter}` and the RateLimit-Policy headers give it. */
export const limiterNames = ['token-ip', 'token-username', 'password-change', 'jobs-read', 'jobs-write', 'api-read', 'api-write'] as const;

export function rateLimiters(deps: RateLimitDeps): { path: string; handler: RequestHandler }[] {
  const { limits } = deps;
  const windowS = Math.ceil(limits.windowMs / 1000);

  function limiter(
    name: string,
    opts: Pick<Partial<Options>, 'limit' | 'keyGenerator' | 'skip' | 'skipSuccessfulRequests' | 'requestWasSuccessful' | 'identifier'>,
    detail: string,
    /** The Redis bucket counted in; two limiters naming one bucket spend one budget. @defaultValue the limiter's name */
    bucket: string = name,
  ): RequestHandler {
    const handler = rateLimit({
      windowMs: limits.windowMs,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      identifier: name,
      store: new RedisStore({ prefix: `${deps.prefix}:rl:${bucket}:`, sendCommandCluster: ({ command }) => sendCommand(deps.redis, command) }),
      logger: {
        error: (err, msg) => deps.log.error({ err, limiter: name }, msg ?? 'rate limiter error'),
        warn: (err, msg) => deps.log.warn({ err, limiter: name }, msg ?? 'rate limiter warning'),
      },
      handler: (req: Request, res: Response) => {
        deps.onLimited?.(name);
        const retryAfter = res.get('Retry-After');
        sendProblem(
          res,
          new AppError('RATE_LIMITED', { detail: `${detail}; retry in ${retryAfter ?? windowS} s` }),
          res.locals.requestId as string | undefined,
          req.originalUrl.split('?')[0],
        );
      },
      ...opts,
    });
    // A store failure (Redis down) or a credential lookup failure (Postgres down) goes to the error
    // middleware, which answers 503 naming the service: refused, never let through uncounted.
    return handler;
  }

  const passwordUsername = (req: Request): string | undefined => {
    const body = req.body as Record<string, unknown> | undefined;
    return body?.grant_type === 'password' && typeof body.username === 'string' && body.username ? body.username : undefined;
  };

  // One username's failed-login bucket key: the same normalisation as the user lookup (case-insensitive),
  // so "Alice" and "alice" share a bucket, hashed so Redis never holds what someone typed into a login form.
  const usernameKey = (username: string) => createHash('sha256').update(username.toLowerCase()).digest('hex');

  const tokenIp = limiter('token-ip', { limit: limits.token.perIp, keyGenerator: (req) => clientIp(req) }, 'Too many token requests from this address');
  const tokenUsername = limiter(
    'token-username',
    {
      limit: limits.token.perUsername,
      skip: (req) => passwordUsername(req) === undefined,
      keyGenerator: (req) => usernameKey(passwordUsername(req)!),
      // A successful login gives its hit back: only failures count towards the brute-force limit.
      skipSuccessfulRequests: true,
    },
    'Too many login attempts for this username',
  );

  // The caller's subject and limit class, resolved once per request (keyGenerator runs before limit and identifier).
  const subjectOf = async (req: Request, res: Response): Promise<{ key: string; cls: LimitClass }> => {
    const cached = res.locals.rateLimitSubject as { key: string; cls: LimitClass } | undefined;
    if (cached) return cached;
    const actor: Actor | undefined = await deps.authenticate(req, res);
    res.locals.actor = actor;
    // Per user, whatever the credential: a user's sessions and API keys share one bucket, so minting keys buys no extra budget.
    const subject = actor ? { key: `user:${actor.userId}`, cls: actor.role } : { key: `ip:${clientIp(req)}`, cls: 'anonymous' as const };
    res.locals.rateLimitSubject = subject;
    return subject;
  };
  // Wrong current passwords on POST /v1/auth/password spend the account's failed-login budget: the
  // token-username bucket of the caller's username. So a stolen access token cannot guess the password
  // through this route at all once the token endpoint has used the budget up, nor the other way round,
  // and both refuse with 429 until the window ends. Only a session can change a password (an API key
  // gets 403 from the route), so other credentials never spend the owner's login budget.
  const passwordChange = limiter(
    'password-change',
    {
      limit: limits.token.perUsername,
      skip: async (req, res) => req.method !== 'POST' || (await deps.authenticate(req, res))?.kind !== 'user',
      keyGenerator: async (req, res) => usernameKey((await deps.authenticate(req, res))!.username),
      skipSuccessfulRequests: true,
      // A 409 lost a race with another change but gave the right current password: not a failed guess.
      requestWasSuccessful: (_req, res) => res.statusCode < 400 || res.statusCode === 409,
    },
    'Too many failed sign-ins or wrong current passwords for this account',
    'token-username',
  );

  // A collection query is a POST (its vector and filter do not fit a URL) but reads: it counts as one.
  const isQuery = (req: Request) => req.method === 'POST' && /^\/v1\/collections\/[^/]+\/query\/?$/.test(req.originalUrl.split('?')[0]!);
  const isRead = (req: Request) => req.method === 'GET' || req.method === 'HEAD' || isQuery(req);
  const perSubject = (family: 'jobs' | 'api', kind: 'read' | 'write', detail: string, skip: (req: Request) => boolean = () => false) =>
    limiter(
      `${family}-${kind}`,
      {
        skip: (req) => isRead(req) !== (kind === 'read') || skip(req),
        keyGenerator: async (req, res) => (await subjectOf(req, res)).key,
        limit: async (req, res) => limits[family][kind][(await subjectOf(req, res)).cls],
        identifier: async (req, res) => `${family}-${kind}-${(await subjectOf(req, res)).cls}`,
      },
      detail,
    );
  // The token endpoint has its own limiters, by IP and by username.
  const isTokenEndpoint = (req: Request) => req.originalUrl.split('?')[0] === '/v1/auth/token';
  const apiRead = perSubject('api', 'read', 'Too many API reads');
  const apiWrite = perSubject('api', 'write', 'Too many API requests', isTokenEndpoint);
  const apiPaths = ['/v1/agents', '/v1/discussions', '/v1/models', '/v1/usage', '/v1/auth', '/v1/admin', '/v1/code', '/v1/collections', '/v1/knowledge'];

  return [
    { path: '/v1/auth/token', handler: tokenIp },
    { path: '/v1/auth/token', handler: tokenUsername },
    { path: '/v1/auth/password', handler: passwordChange },
    { path: '/v1/jobs', handler: perSubject('jobs', 'read', 'Too many job reads') },
    { path: '/v1/jobs', handler: perSubject('jobs', 'write', 'Too many job requests') },
    // One handler per family, mounted on every path: a single budget across them.
    ...apiPaths.flatMap((path) => [
      { path, handler: apiRead },
      { path, handler: apiWrite },
    ]),
  ];
}
