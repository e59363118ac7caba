/**
 * Requests that ask to switch protocols, answered as the HTTP/1.1 requests they also are.
 *
 * Node hands every request carrying `Connection: Upgrade` to the server's 'upgrade' listeners as soon
 * as there is one (Socket.IO's), never to the app; Socket.IO then drops those not on its own path,
 * unanswered. RFC 9110 §7.8 lets a server ignore Upgrade, and clients count on that: Java's HttpClient
 * asks every plain-http request to upgrade to h2c, so each of its requests got an empty reply. Here a
 * request on any other path goes through the app after all, on a fresh request object (Node has
 * already ended the original's body), and its connection is closed once answered.
 */
import { IncomingMessage, ServerResponse, type RequestListener } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError } from '../domain/errors.ts';
import { endWithProblem } from './errors.ts';

export function answerUpgradesAsHttp(app: RequestListener, opts: { upgradePath: string; maxBodyBytes: number }) {
  return (req: IncomingMessage, duplex: Duplex, head: Buffer): void => {
    if ((req.url ?? '').startsWith(opts.upgradePath)) return;
    const socket = duplex as Socket;
    socket.on('error', () => socket.destroy());
    if (req.headers['transfer-encoding'] !== undefined)
      return endWithProblem(socket, new AppError('MALFORMED_BODY', { detail: 'A request that asks to upgrade must give its body a Content-Length' }), 411);
    const length = Number(req.headers['content-length'] ?? 0);
    if (!Number.isSafeInteger(length) || length < 0)
      return endWithProblem(socket, new AppError('MALFORMED_BODY', { detail: 'Content-Length is not a length' }), 411);
    if (length > opts.maxBodyBytes) return endWithProblem(socket, new AppError('PAYLOAD_TOO_LARGE'));

    const chunks: Buffer[] = head.length ? [head] : [];
    let received = head.length;
    // A body that never arrives does not hold the connection (the server's own request timeout ended at the upgrade).
    const timer = setTimeout(() => socket.destroy(), 30_000).unref();
    const answer = () => {
      clearTimeout(timer);
      socket.removeListener('data', onData);
      const plain = new IncomingMessage(socket);
      Object.assign(plain, {
        method: req.method,
        url: req.url,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        httpVersion: req.httpVersion,
        httpVersionMajor: req.httpVersionMajor,
        httpVersionMinor: req.httpVersionMinor,
        complete: true,
      });
      if (length > 0) plain.push(Buffer.concat(chunks).subarray(0, length));
      plain.push(null);
      const res = new ServerResponse(plain);
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.on('finish', () => {
        res.detachSocket(socket);
        socket.end();
      });
      app(plain, res);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= length) answer();
    };
    if (received >= length) answer();
    else socket.on('data', onData);
  };
}

/** A body limit as the JSON parser takes it ('1mb', '512kb', '2048'), in bytes (1 kb = 1024). */
export function byteSize(limit: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(limit);
  if (!m) return 1_048_576;
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb' | 'gb'];
  return Math.floor(Number(m[1]) * unit);
}
