/**
 * FerretDB speaks the MongoDB wire protocol well enough for the official
 * driver: CRUD, unique indexes with MongoDB's own error code, and aggregation.
 * Each test works in a collection of its own and drops it afterwards.
 */
import { MongoClient, MongoServerError, type Collection, type Document } from 'mongodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serviceEnv, uniqueName } from './service-env.ts';

const client = new MongoClient(serviceEnv('MONGODB_URL'), { serverSelectionTimeoutMS: 5000 });
const created: string[] = [];

function freshCollection<T extends Document>(): Collection<T> {
  const name = uniqueName('svc_test');
  created.push(name);
  return client.db().collection<T>(name);
}

beforeAll(async () => {
  await client.connect();
});

afterEach(async () => {
  for (const name of created.splice(0))
    await client
      .db()
      .dropCollection(name)
      .catch(() => false);
});

afterAll(async () => {
  await client.close();
});

describe('MongoDB wire protocol (FerretDB)', () => {
  it('finds an inserted document by a field', async () => {
    const users = freshCollection<{ name: string; role: string }>();
    const { insertedId } = await users.insertOne({ name: 'ada', role: 'admin' });
    const found = await users.findOne({ name: 'ada' });
    expect(found).toEqual({ _id: insertedId, name: 'ada', role: 'admin' });
  });

  it('applies $set and $inc to a matched document', async () => {
    const counters = freshCollection<{ key: string; hits: number; label?: string }>();
    await counters.insertOne({ key: 'k', hits: 1 });
    const result = await counters.updateOne({ key: 'k' }, { $inc: { hits: 2 }, $set: { label: 'updated' } });
    expect(result.matchedCount).toBe(1);
    expect(result.modifiedCount).toBe(1);
    expect(await counters.findOne({ key: 'k' }, { projection: { _id: 0 } })).toEqual({ key: 'k', hits: 3, label: 'updated' });
  });

  it('rejects a duplicate on a unique index with error code 11000', async () => {
    const accounts = freshCollection<{ email: string }>();
    await accounts.createIndex({ email: 1 }, { unique: true });
    await accounts.insertOne({ email: 'dup@example.test' });
    const error = await accounts.insertOne({ email: 'dup@example.test' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MongoServerError);
    expect((error as MongoServerError).code).toBe(11000);
    expect(await accounts.countDocuments({ email: 'dup@example.test' })).toBe(1);
  });

  // One accumulator per $group: FerretDB v1 fills only the first and returns 0 for the rest (FerretDB issue #4616).
  it('sums a field per group over the documents $match keeps', async () => {
    const usage = freshCollection<{ model: string; tokens: number; billable: boolean }>();
    const rows = [
      { model: 'chat', tokens: 12, billable: true },
      { model: 'chat', tokens: 30, billable: true },
      { model: 'chat', tokens: 99, billable: false },
      { model: 'embed', tokens: 7, billable: true },
      { model: 'embed', tokens: 5, billable: true },
      { model: 'embed', tokens: 40, billable: false },
    ];
    await usage.insertMany(rows.map((r) => ({ ...r })));
    const expected = new Map<string, number>();
    for (const r of rows) if (r.billable) expected.set(r.model, (expected.get(r.model) ?? 0) + r.tokens);

    const groups = await usage
      .aggregate<{ _id: string; total: number }>([
        { $match: { billable: true } },
        { $group: { _id: '$model', total: { $sum: '$tokens' } } },
        { $sort: { _id: 1 } },
      ])
      .toArray();

    expect(groups).toEqual([...expected].sort(([a], [b]) => a.localeCompare(b)).map(([model, total]) => ({ _id: model, total })));
  });
});
