/**
 * For suites that drive OllamaClient against the fault stub: a fresh stub
 * for every test, and every client made through `client()` closed (and the
 * stub stopped) after it. Call once at the top of a test file.
 */
import { afterEach, beforeEach } from 'vitest';
import { OllamaClient, type OllamaClientOptions } from '../../platform/ollama/index.ts';
import { startOllamaStub, type OllamaStub } from './ollama-stub.ts';

export function stubbedClients(defaults: Omit<Partial<OllamaClientOptions>, 'host'>) {
  let current: OllamaStub | undefined;
  const clients: OllamaClient[] = [];
  beforeEach(async () => {
    current = await startOllamaStub();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await current?.close();
  });
  const stub = (): OllamaStub => {
    if (!current) throw new Error('the stub starts in beforeEach');
    return current;
  };
  return {
    /** This test's stub. */
    get stub(): OllamaStub {
      return stub();
    },
    /** A client on this test's stub: the suite's defaults, then `opts`. */
    client: (opts: Partial<OllamaClientOptions> = {}): OllamaClient => {
      const c = new OllamaClient({ host: stub().url, ...defaults, ...opts } as OllamaClientOptions);
      clients.push(c);
      return c;
    },
  };
}
