/** The HTTP shapes of sign-in and identity (/v1/auth), shared by the API, its OpenAPI document and the SDK. */
import { z } from 'zod';

/**
 * viewer: reads; member: runs its own jobs and rooms; operator: everyone's jobs, queues, models;
 * admin: everything. The permissions each holds are in api/auth/permissions.ts.
 */
export const Role = z.enum(['admin', 'operator', 'member', 'viewer']);
export type Role = z.infer<typeof Role>;

/** POST /v1/auth/token's answer (RFC 6749 §5.1). `refresh_token` works once: each refresh returns a new one. */
export const TokenResponse = z.object({
  access_token: z.string(),
  token_type: z.literal('Bearer'),
  /** Seconds the access token lives. */
  expires_in: z.number(),
  refresh_token: z.string(),
  scope: z.string(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** GET /v1/auth/me: who the credential belongs to and what it may do. */
export const Me = z.object({
  id: z.uuid(),
  username: z.string(),
  role: Role,
  permissions: z.array(z.string()),
  authenticatedWith: z.enum(['user', 'apiKey']),
});
export type Me = z.infer<typeof Me>;
