/**
 * The client's address for requests that do not pass through Express (the
 * Socket.IO handshake), with the same PARLEY_TRUST_PROXY rule Express applies
 * to `req.ip`: no proxy trusted, a hop count, or a list of addresses,
 * subnets and named ranges (proxy-addr, which Express itself uses).
 */
import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { Config } from '../../platform/config.ts';

export function clientIpOf(trust: Config['http']['trustProxy']): (req: IncomingMessage) => string {
  const fn = trust === false ? () => false : typeof trust === 'number' ? (_addr: string, i: number) => i < trust : proxyaddr.compile(trust);
  return (req) => proxyaddr(req, fn);
}
