/**
 * Routes are declarations plus one call. A route names its method, path,
 * schemas and the permission it needs, then calls a plain domain function
 * with plain arguments. Nothing below a route sees `req` or `res`.
 *
 * The same declarations feed the OpenAPI document and the RBAC matrix test.
 */
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import { Problem } from '../../shared/index.ts';
import type { Actor, Permission } from '../auth/permissions.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * `public`: no credentials needed. `authenticated`: any valid credential, whatever its scope (for what a
 * credential may always do to itself, such as ending its own session). Otherwise the permission an
 * authenticated actor must hold.
 */
export type Access = 'public' | 'authenticated' | Permission;

/**
 * Who calls a route of access `A`: a public route may be called anonymously; any other route runs
 * only after mount.ts has authenticated the caller and checked the permission, so its handler
 * receives an Actor, never undefined.
 */
export type ActorFor<A extends Access> = A extends 'public' ? Actor | undefined : Actor;

export interface RouteInput<B, Q, P, A extends Access = Access> {
  body: B;
  query: Q;
  params: P;
  actor: ActorFor<A>;
  requestId: string;
  ip: string;
  userAgent: string | undefined;
  /** Selected request headers routes may use. */
  headers: { idempotencyKey?: string; ifNoneMatch?: string; cacheControl?: string; authorization?: string; contentType?: string };
  /** The raw request body, for `bodyType: 'binary'` routes (nothing has read it). */
  stream?: Readable;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Defaults to application/json. */
  contentType?: string;
}

/** A documented header: its description and, when it has one, its schema. */
export interface HeaderDoc {
  description: string;
  schema?: z.ZodType;
}

export interface Route<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType, A extends Access = Access> {
  method: Method;
  /** Express syntax: /v1/jobs/:id */
  path: string;
  /** Unique, camelCase: the method name generated clients give this call (`submitJob`). */
  operationId: string;
  summary: string;
  /** Longer prose for the OpenAPI document (semantics the schemas cannot say). */
  description?: string;
  tags: string[];
  access: A;
  body?: B;
  /** Body encoding. @defaultValue 'json'. `binary`: the route reads `stream` itself; `binaryTypes` lists the media types it takes. */
  bodyType?: 'json' | 'form' | 'binary';
  binaryTypes?: string[];
  query?: Q;
  params?: P;
  /**
   * What the OpenAPI document shows for the body when validation runs in steps (POST /v1/jobs checks
   * the envelope, then the kind's input): a schema that says it in one. @defaultValue `body`
   */
  documentedBody?: z.ZodType;
  /** Request headers the route reads, for the OpenAPI document. */
  requestHeaders?: Record<string, HeaderDoc>;
  /**
   * The token endpoint's Authorization header may carry OAuth2 client credentials (RFC 6749 §2.3.1,
   * HTTP Basic): a Basic header is the route's to read, never a user's credential.
   */
  clientAuth?: boolean;
  /** Responses by status. 401, 403, 404, 429 and 503 are added to the document where they apply (api/openapi.ts). */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string; headers?: Record<string, HeaderDoc> }>;
  handle(input: RouteInput<z.infer<B>, z.infer<Q>, z.infer<P>, A>): Promise<RouteResult>;
}

/**
 * Keeps the generic parameters inferred at each declaration, the access level included (as a
 * literal), so a handler's `actor` is typed by it. The erased `Route` is what mount.ts serves.
 */
export function route<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType, A extends Access>(r: Route<B, Q, P, A>): Route {
  return r as unknown as Route;
}

/** A problem+json response, for a route's `responses`: what it means and, when it sets them, its headers. */
export function problem(description: string, headers?: Record<string, HeaderDoc>) {
  return { description, schema: Problem, contentType: 'application/problem+json', ...(headers ? { headers } : {}) };
}

/** The refusals every Server-Sent Events route shares (api/realtime/sse.ts). */
export const eventStreamRefusals = {
  406: problem('The Accept header rules out text/event-stream, the only representation (NOT_ACCEPTABLE)'),
  429: problem('Too many live connections for this user (PARLEY_MAX_CONNECTIONS_PER_USER, SSE and sockets together), or rate limited (RATE_LIMITED)', {
    'Retry-After': { description: 'Seconds to wait' },
  }),
};

/**
 * Whether an If-None-Match header matches `etag` (RFC 9110 §13.1.2): `*`, or any entity tag of its
 * comma-separated list under the weak comparison (W/ ignored on both sides).
 */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  if (header.trim() === '*') return true;
  const mine = opaque(etag);
  return header.split(',').some((tag) => opaque(tag) === mine);
}
