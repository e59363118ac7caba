/**
 * Roles and permissions, in one place. Every route declares the permission it
 * needs; this table says which roles hold it.
 *
 * - viewer:   reads its own jobs and what is shared with it; cannot spend compute.
 * - member:   submits and manages its own jobs, agents and discussions.
 * - operator: sees and manages everyone's jobs; reads queues and models.
 * - admin:    everything, including users, roles, models and the audit log.
 */
import { Permission, Role } from '../../shared/index.ts';

export { Permission, Role };

export const permissions = {
  'jobs:read': ['viewer', 'member', 'operator', 'admin'],
  'jobs:submit': ['member', 'operator', 'admin'],
  'jobs:cancel': ['member', 'operator', 'admin'],
  'jobs:retry': ['member', 'operator', 'admin'],
  /** See and act on other users' jobs. */
  'jobs:any': ['operator', 'admin'],
  'sessions:self': ['viewer', 'member', 'operator', 'admin'],
  'apikeys:self': ['member', 'operator', 'admin'],
  'users:manage': ['admin'],
  'audit:read': ['admin'],
  'queues:read': ['operator', 'admin'],
  'queues:write': ['admin'],
  'metrics:read': ['operator', 'admin'],
  'models:read': ['viewer', 'member', 'operator', 'admin'],
  'models:manage': ['operator', 'admin'],
  'models:admin': ['admin'],
  'usage:self': ['viewer', 'member', 'operator', 'admin'],
  'usage:any': ['operator', 'admin'],
  'discussions:read': ['viewer', 'member', 'operator', 'admin'],
  /** Post a human message into a room you may post to (yours, or shared with you): a write, so a read-only credential cannot. */
  'discussions:post': ['viewer', 'member', 'operator', 'admin'],
  'discussions:write': ['member', 'operator', 'admin'],
  'discussions:any': ['admin'],
  /** Search and read code repositories one may see (own, shared, public). */
  'code:read': ['viewer', 'member', 'operator', 'admin'],
  /** Create, upload, index and delete one's own repositories. */
  'code:write': ['member', 'operator', 'admin'],
  /** Read and manage every repository. */
  'code:any': ['operator', 'admin'],
  /** Repositories from a folder on the worker machines (under PARLEY_CODE_ROOTS). */
  'code:paths': ['operator', 'admin'],
  'collections:read': ['viewer', 'member', 'operator', 'admin'],
  'collections:write': ['member', 'operator', 'admin'],
  /** Read and manage every collection. */
  'collections:any': ['admin'],
  /** Search and read one's own knowledge: sources, items, links. */
  'knowledge:read': ['viewer', 'member', 'operator', 'admin'],
  /** Add and forget one's own sources (adding one spends compute: a knowledge.extract job). */
  'knowledge:write': ['member', 'operator', 'admin'],
} as const satisfies Record<Permission, readonly Role[]>;

export const allPermissions: Permission[] = Permission.options;

export function roleHas(role: Role, permission: Permission): boolean {
  return (permissions[permission] as readonly Role[]).includes(role);
}

export function permissionsOf(role: Role): Permission[] {
  return allPermissions.filter((p) => roleHas(role, p));
}

/** Who is making a request, after authentication. */
export interface Actor {
  kind: 'user' | 'apiKey';
  userId: string;
  username: string;
  role: Role;
  /** Effective permissions: the role's, narrowed by an API key's scopes. */
  permissions: ReadonlySet<Permission>;
  sessionId?: string;
  apiKeyId?: string;
}

export function can(actor: Actor | undefined, permission: Permission): boolean {
  return actor !== undefined && actor.permissions.has(permission);
}

/** The actor a verified credential stands for: the user's role's permissions, narrowed by a session's or key's scopes. */
export function actorOf(
  user: { id: string; username: string; role: Role },
  via: { sessionId?: string; apiKeyId?: string; scopes?: readonly Permission[] },
): Actor {
  const rolePerms = permissionsOf(user.role);
  const perms = via.scopes ? rolePerms.filter((p) => via.scopes!.includes(p)) : rolePerms;
  return {
    kind: via.apiKeyId ? 'apiKey' : 'user',
    userId: user.id,
    username: user.username,
    role: user.role,
    permissions: new Set(perms),
    sessionId: via.sessionId,
    apiKeyId: via.apiKeyId,
  };
}
