/** What every managed service offers the service manager. */
export interface Service {
  name: string;
  /** The `export NAME=value` lines this service contributes. */
  env(): Record<string, string>;
  /** True when the user configured this service's URL: then we start nothing. */
  external(): boolean;
  /** Idempotent: starts what is missing, checks what is configured. Returns a short state. */
  up(): Promise<string>;
  down(): Promise<string>;
  status(): Promise<string>;
}
