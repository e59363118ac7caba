import { createContext, useContext, type ReactNode } from 'react';
import type { ParleyClient } from '../client.ts';

const ParleyContext = createContext<ParleyClient | null>(null);

/** Makes a client available to every hook below it. */
export function ParleyProvider({ client, children }: { client: ParleyClient; children?: ReactNode }) {
  return <ParleyContext.Provider value={client}>{children}</ParleyContext.Provider>;
}

/** The client of the nearest ParleyProvider. */
export function useParleyClient(): ParleyClient {
  const client = useContext(ParleyContext);
  if (!client) throw new Error('Parley hooks need a <ParleyProvider client={createClient(…)}> above them');
  return client;
}
