/** What every managed service offers the service manager. */
export interface Service {
  name: string;
  /** The `export NAME=value` lines this service contributes. */
  env(): Record<string, string>;
  /** True when the user configured this service's URL: then we start nothing. */
  external(): boolean;
  /** Idempotent: starts what is missing, checks what is configured. Returns a short state. */
  up(): Promise<string>;
  /**
   * Before anything starts or builds: throws PortTaken when this service is
   * managed and its port is held by something that is not ours.
   */
  preflight(): Promise<void>;
  down(): Promise<string>;
  /** After `down`: removes this service's data (never a configured external one's). */
  purge(): Promise<string>;
  status(): Promise<string>;
}
