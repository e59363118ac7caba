import { describe, expect, it } from 'vitest';
import { believedAt, extractSource, readableScopes, scopeKey } from '../../platform/knowledge/index.ts';
import type { Link } from '../../shared/index.ts';

const x = extractSource(
  {
    kind: 'conversation',
    title: 'offices',
    messages: [
      { id: 't1', speaker: 'Ada', text: 'Remote teams ship faster than office teams.' },
      { id: 't2', speaker: 'Bob', text: 'I disagree. Office teams catch integration bugs earlier.' },
      { id: 't3', speaker: 'Cy', text: 'Exactly. Remote teams at ACME shipped 20% more in 2023.', replyTo: 't1' },
      { id: 't4', speaker: 'Bob', text: 'What about onboarding?' },
    ],
  },
  { sourceId: 'src', scope: { scope: 'shared', owner: 'u', room: null }, recordedAt: '2024-01-01T00:00:00.000Z' },
);
const id = (text: string) => x.items.find((i) => i.text === text)!.id;
const ofType = (t: Link['type']) => x.links.filter((l) => l.type === t);

describe('links from the arena structure', () => {
  it('links a rebuttal to the head item of the previous speaker by turn order', () => {
    expect(ofType('rebuts')).toEqual([
      {
        type: 'rebuts',
        from: { kind: 'item', id: id('Office teams catch integration bugs earlier.') },
        to: { kind: 'item', id: id('Remote teams ship faster than office teams.') },
        basis: 'turn-order',
      },
    ]);
  });

  it('links support through an explicit reply-to, not the previous turn', () => {
    expect(ofType('supports')).toEqual([
      {
        type: 'supports',
        from: { kind: 'item', id: id('Remote teams at ACME shipped 20% more in 2023.') },
        to: { kind: 'item', id: id('Remote teams ship faster than office teams.') },
        basis: 'reply-to',
      },
    ]);
  });

  it('adds no stance link for a neutral turn', () => {
    const fromQuestion = x.links.filter((l) => l.from.id === id('What about onboarding?') && (l.type === 'supports' || l.type === 'rebuts'));
    expect(fromQuestion).toEqual([]);
  });

  it('derives every item from its source and links it to each entity it mentions', () => {
    expect(ofType('derived_from')).toHaveLength(x.items.length);
    for (const l of ofType('derived_from')) expect(l.to).toEqual({ kind: 'source', id: 'src' });
    const acme = id('Remote teams at ACME shipped 20% more in 2023.');
    expect(
      ofType('mentions')
        .filter((l) => l.from.id === acme)
        .map((l) => l.to.id)
        .sort(),
    ).toEqual(['name:acme', 'number:20%', 'number:2023']);
  });
});

describe('scope keys', () => {
  it('keeps each agent in its own private partition and encodes ids so none can forge another key', () => {
    expect(scopeKey({ scope: 'private', owner: 'agent-a', room: null })).toBe('private:agent-a');
    expect(scopeKey({ scope: 'private', owner: 'a,room:x', room: null })).toBe('private:a%2Croom%3Ax');
    expect(scopeKey({ scope: 'room', owner: 'agent-a', room: 'r1' })).toBe('room:r1');
    expect(readableScopes({ id: 'agent-b', rooms: ['r1'] })).toEqual(['private:agent-b', 'room:r1', 'shared']);
    expect(readableScopes({ id: 'agent-b', rooms: [] })).not.toContain('private:agent-a');
  });

  it('answers as-of belief from recorded and superseded times', () => {
    const item = { recordedAt: '2024-01-01T00:00:00Z', supersededAt: '2024-02-01T00:00:00Z' };
    expect(believedAt(item, '2023-12-31T00:00:00Z')).toBe(false);
    expect(believedAt(item, '2024-01-15T00:00:00Z')).toBe(true);
    expect(believedAt(item, '2024-02-01T00:00:00Z')).toBe(false);
  });
});
