/**
 * Routes are declarations plus one call. A route names its method, path,
 * schemas and the permission it needs, then calls a plain domain function
 * with plain arguments. Nothing below a route sees `req` or `res`.
 *
 * The same declarations feed the OpenAPI document and the RBAC matrix test.
 */
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Actor, Permission } from '../auth/permissions.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** `public`: no credentials needed. Otherwise the permission an authenticated actor must hold. */
export type Access = 'public' | Permission;

export interface RouteInput<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  actor: Actor | undefined;
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

export interface Route<B extends z.ZodType = z.ZodType, Q extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType> {
  method: Method;
  /** Express syntax: /v1/jobs/:id */
  path: string;
  summary: string;
  tags: string[];
  access: Access;
  body?: B;
  /** Body encoding. @defaultValue 'json'. `binary`: the route reads `stream` itself; `binaryTypes` lists the media types it takes. */
  bodyType?: 'json' | 'form' | 'binary';
  binaryTypes?: string[];
  query?: Q;
  params?: P;
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  handle(input: RouteInput<z.infer<B>, z.infer<Q>, z.infer<P>>): Promise<RouteResult>;
}

/** Keeps the generic parameters inferred at each declaration. */
export function route<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType>(r: Route<B, Q, P>): Route {
  return r as unknown as Route;
}
