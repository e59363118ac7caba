import { describe, expect, it } from 'vitest';
import { DedupIndex, compareStatements, extractSource, fingerprint, type Similarity } from '../../platform/knowledge/index.ts';

const verdict = (a: string, b: string, similarity?: Similarity) => compareStatements(a, b, similarity ? { similarity } : {});

describe('dedup: duplicates that merge', () => {
  it('merges the same bytes at the hash stage', () => {
    expect(verdict('Flight ASR1603 departs at 10:40.', 'Flight ASR1603 departs at 10:40.')).toEqual({ verdict: 'duplicate', stage: 'hash' });
  });

  it('merges case, punctuation, contractions and leading fillers at the normalised stage', () => {
    expect(verdict('We do not ship on Fridays.', "well, we don't ship on fridays")).toEqual({ verdict: 'duplicate', stage: 'normalised' });
  });

  it('merges a reordered paraphrase through the double gate', () => {
    expect(verdict('I usually drink a cortado in the morning.', 'In the morning I normally have a cortado.')).toMatchObject({
      verdict: 'duplicate',
      stage: 'gate',
    });
  });

  it('merges a reworded relation ("lives in" and "is based in") with the same subject and value', () => {
    expect(verdict('Hana lives in Riga.', 'Hana is based in Riga these days.')).toMatchObject({ verdict: 'duplicate', stage: 'gate' });
  });

  it('merges the same date written two ways', () => {
    expect(verdict('The review is on 8 May 2023.', 'The review is on 2023-05-08.')).toMatchObject({ verdict: 'duplicate' });
  });
});

describe('dedup: what never merges', () => {
  it('keeps near-names apart (ASR1603 and ASR1605)', () => {
    expect(verdict('Flight ASR1603 is delayed by two hours.', 'Flight ASR1605 is delayed by two hours.')).toEqual({
      verdict: 'distinct',
      reason: 'near-name',
      overlap: expect.any(Number),
    });
  });

  it('keeps capitalised near-names apart when stemming would make them one word (Atlas and Atlae)', () => {
    expect(verdict('Atlas uses Postgres for deployments.', 'Atlae uses Postgres for deployments.')).toMatchObject({ verdict: 'distinct', reason: 'near-name' });
  });

  it('keeps near-names apart even when the injected similarity says they are the same', () => {
    const always: Similarity = () => 1;
    expect(verdict('Flight ASR1603 is delayed.', 'Flight ASR1605 is delayed.', always)).toMatchObject({ verdict: 'distinct', reason: 'near-name' });
  });

  it('flags a value change ("cortado" to "flat white") as an update, not a duplicate', () => {
    expect(verdict('My usual coffee is a cortado.', 'My usual coffee is a flat white.', () => 1)).toMatchObject({ verdict: 'update', reason: 'value-changed' });
  });

  it('flags a changed number or time as an update', () => {
    expect(verdict('Flight ASR1603 departs at 10:40.', 'Flight ASR1603 departs at 11:15.')).toMatchObject({ verdict: 'update', reason: 'value-changed' });
    expect(verdict('The budget is 40k.', 'The budget is 55k.')).toMatchObject({ verdict: 'update' });
  });

  it('flags a negation as an update', () => {
    expect(verdict('I like working from the office.', "I don't like working from the office.")).toMatchObject({ verdict: 'update', reason: 'negation' });
  });

  it('keeps different subjects apart', () => {
    expect(verdict('Ada leads the migration.', 'Grace leads the migration.')).toMatchObject({ verdict: 'distinct', reason: 'different-entity' });
  });

  it('keeps an elaboration apart from its shorter form', () => {
    expect(verdict('The API uses Redis.', 'The API uses Redis for rate limits and session storage.')).toMatchObject({ verdict: 'distinct' });
  });

  it('lets the gate refuse when the injected similarity is low', () => {
    expect(verdict('I usually drink a cortado in the morning.', 'In the morning I normally have a cortado.', () => 0.1)).toMatchObject({
      verdict: 'distinct',
      reason: 'gate',
    });
  });
});

describe('dedup index', () => {
  it('answers a duplicate before an update, and nothing for an unrelated statement', () => {
    const index = new DedupIndex<string>();
    index.add(fingerprint('My usual coffee is a cortado.'), 'first');
    index.add(fingerprint('The standup is at 9:30.'), 'second');
    expect(index.check(fingerprint('my usual coffee is a cortado'))).toMatchObject({ match: 'first', verdict: { verdict: 'duplicate' } });
    expect(index.check(fingerprint('My usual coffee is a flat white.'))).toMatchObject({ match: 'first', verdict: { verdict: 'update' } });
    expect(index.check(fingerprint('Kubernetes runs the batch jobs.'))).toBeNull();
  });
});

describe('supersede through extraction', () => {
  it('records the newer value as superseding the older, which keeps its text and gets an end of validity', () => {
    const x = extractSource(
      {
        kind: 'conversation',
        title: 'coffee',
        messages: [
          { id: 'm1', speaker: 'Ada', text: 'My usual coffee is a cortado.', at: '2023-05-01T08:00:00Z' },
          { id: 'm2', speaker: 'Ada', text: 'My usual coffee is a flat white.', at: '2023-06-01T08:00:00Z' },
        ],
      },
      { sourceId: 's', scope: { scope: 'private', owner: 'agent-ada', room: null }, recordedAt: '2024-01-01T00:00:00.000Z' },
    );
    const [old, now] = x.items;
    expect(old).toMatchObject({ text: 'My usual coffee is a cortado.', supersededAt: '2024-01-01T00:00:00.000Z', validTo: '2023-06-01T08:00:00.000Z' });
    expect(now).toMatchObject({ text: 'My usual coffee is a flat white.', supersededAt: null, validTo: null });
    expect(x.links).toContainEqual({ type: 'supersedes', from: { kind: 'item', id: now!.id }, to: { kind: 'item', id: old!.id }, basis: 'dedup-update' });
    expect(x.supersedes).toBe(1);
  });

  it('believes a value said again after it changed (A, B, A): a new item supersedes B, not a merge into the superseded A', () => {
    const said = (id: string, drink: string, month: number) => ({
      id,
      speaker: 'Ada',
      text: `My usual coffee is a ${drink}.`,
      at: `2023-0${month}-01T08:00:00Z`,
    });
    const x = extractSource(
      {
        kind: 'conversation',
        title: 'coffee',
        messages: [said('m1', 'cortado', 5), said('m2', 'flat white', 6), said('m3', 'cortado', 7), said('m4', 'cortado', 8)],
      },
      { sourceId: 's', scope: { scope: 'private', owner: 'agent-ada', room: null }, recordedAt: '2024-01-01T00:00:00.000Z' },
    );
    const believed = x.items.filter((i) => i.supersededAt === null);
    expect(believed.map((i) => [i.text, i.provenance.messageIds])).toEqual([['My usual coffee is a cortado.', ['m3', 'm4']]]);
    const [first, second, third] = x.items;
    expect(x.items).toHaveLength(3);
    expect(first).toMatchObject({ provenance: { messageIds: ['m1'] }, supersededAt: '2024-01-01T00:00:00.000Z' });
    expect(second).toMatchObject({ text: 'My usual coffee is a flat white.', supersededAt: '2024-01-01T00:00:00.000Z', validTo: '2023-07-01T08:00:00.000Z' });
    expect(x.links.filter((l) => l.type === 'supersedes').map((l) => [l.from.id, l.to.id])).toEqual([
      [second!.id, first!.id],
      [third!.id, second!.id],
    ]);
  });

  const conversation = (texts: string[]) =>
    extractSource(
      { kind: 'conversation', title: 't', messages: texts.map((text, n) => ({ id: `m${n + 1}`, speaker: 'Hana', text, at: `2023-05-0${n + 1}T08:00:00Z` })) },
      { sourceId: 's', scope: { scope: 'room', owner: 'agent-hana', room: 'r' }, recordedAt: '2024-01-01T00:00:00.000Z' },
    );
  const links = (x: ReturnType<typeof conversation>) => {
    const turn = new Map(x.items.map((i) => [i.id, i.provenance.messageIds[0]]));
    return x.links.filter((l) => l.type === 'supersedes').map((l) => [turn.get(l.from.id), turn.get(l.to.id)]);
  };

  it('never supersedes a statement it shares only its value with (a place, a drink), whatever the order', () => {
    for (const [a, b] of [
      ['For context, I live in Lisbon now.', 'Our offsite might be in Lisbon next spring.'],
      ['For context, I live in Porto now.', 'My brother moved to Porto last year.'],
      ['Side note: my usual coffee is a green tea.', 'The café downstairs started selling green tea in paper cups.'],
      ['Side note: my usual coffee is a green tea.', 'Someone left a cold green tea in the meeting room again.'],
    ]) {
      expect(links(conversation([a!, b!])), `${a} / ${b}`).toEqual([]);
      expect(links(conversation([b!, a!])), `${b} / ${a}`).toEqual([]);
    }
  });

  it('updates the standing statement whose frame it shares most, never one its chain already replaced', () => {
    // A distractor sharing the new value sits between; the update still replaces the previous home.
    const home = conversation(['For context, I live in Riga now.', 'I read that Lisbon is building a new tram line.', 'For context, I live in Lisbon now.']);
    expect(links(home)).toEqual([['m3', 'm1']]);
    // A chain of changes: each value replaces the one before it, not an older one with a shorter value.
    const coffee = conversation([
      'Side note: my usual coffee is a chai.',
      'Side note: my usual coffee is a flat white.',
      'Side note: my usual coffee is a oat latte.',
    ]);
    expect(links(coffee)).toEqual([
      ['m2', 'm1'],
      ['m3', 'm2'],
    ]);
  });
});
