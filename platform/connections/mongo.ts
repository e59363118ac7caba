/**
 * The MongoDB connection (FerretDB in development and tests). One client per
 * process, made in the composition root. The driver connects on first use,
 * so a process starts even while MongoDB is still coming up; operations then
 * fail fast after `serverSelectionTimeoutMS`.
 */
import { MongoClient, type Db } from 'mongodb';

export interface Mongo {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

export function connectMongo(url: string, opts: { serverSelectionTimeoutMs?: number; appName?: string } = {}): Mongo {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: opts.serverSelectionTimeoutMs ?? 5_000, appName: opts.appName ?? 'parley' });
  return { client, db: client.db(), close: () => client.close() };
}
