import { describe, expect, it } from 'vitest';
import { SourceExtractor, extractSource, findTimes, parseTime, splitSentences } from '../../platform/knowledge/index.ts';
import { KnowledgeItem, Source, type ScopeRef } from '../../shared/index.ts';

const scope: ScopeRef = { scope: 'room', owner: 'user-1', room: 'room-1' };
const recordedAt = '2024-03-01T12:00:00.000Z';

describe('sentences', () => {
  it('splits on sentence ends and keeps spans that slice back to the sentence', () => {
    const text = 'Dr. Smith landed at 1:56 p.m. on Monday. It was 3.5 hours late!  Was it worth it? Yes, e.g. for the view.';
    const got = splitSentences(text);
    expect(got.map((s) => s.text)).toEqual([
      'Dr. Smith landed at 1:56 p.m. on Monday.',
      'It was 3.5 hours late!',
      'Was it worth it?',
      'Yes, e.g. for the view.',
    ]);
    for (const s of got) expect(text.slice(s.start, s.end)).toBe(s.text);
  });

  it('treats Markdown headings, list items and blank lines as boundaries and drops their markers from the span', () => {
    const text = '# Decisions\nWe chose Postgres\n\n- Redis holds the cache\n- Ollama serves the model\n> quoted line';
    const got = splitSentences(text);
    expect(got.map((s) => s.text)).toEqual(['Decisions', 'We chose Postgres', 'Redis holds the cache', 'Ollama serves the model', 'quoted line']);
    for (const s of got) expect(text.slice(s.start, s.end)).toBe(s.text);
  });
});

describe('times', () => {
  it('parses free-text times and keeps the verbatim string', () => {
    expect(parseTime('1:56 pm on 8 May, 2023')).toEqual({ verbatim: '1:56 pm on 8 May, 2023', iso: '2023-05-08T13:56:00.000Z', precision: 'minute' });
    expect(parseTime('May 8th, 2023 at 10:15 am').iso).toBe('2023-05-08T10:15:00.000Z');
    expect(parseTime('12:05 am on 1 January, 2024').iso).toBe('2024-01-01T00:05:00.000Z');
    expect(parseTime('8 May 2023')).toMatchObject({ iso: '2023-05-08T00:00:00.000Z', precision: 'day' });
  });

  it('parses ISO 8601 with and without offsets', () => {
    expect(parseTime('2023-05-08').iso).toBe('2023-05-08T00:00:00.000Z');
    expect(parseTime('2023-05-08T13:56:00Z').iso).toBe('2023-05-08T13:56:00.000Z');
    expect(parseTime('2023-05-08T13:56:00+02:00')).toEqual({ verbatim: '2023-05-08T13:56:00+02:00', iso: '2023-05-08T11:56:00.000Z', precision: 'second' });
  });

  it('keeps what it cannot read verbatim, with no instant', () => {
    expect(parseTime('last Tuesday-ish')).toEqual({ verbatim: 'last Tuesday-ish', iso: null, precision: null });
    expect(parseTime('31 February 2023').iso).toBeNull();
    expect(parseTime('13:75 on 8 May 2023').iso).toBeNull();
  });

  it('gives no instant outside the years 0001-9999 in UTC, and reads years below 100 as written', () => {
    // An offset carried 9999-12-31 into year 10000 ("+010000-…"); stored, it broke every later read of the owner's knowledge.
    expect(parseTime('9999-12-31T23:00-02:00')).toEqual({ verbatim: '9999-12-31T23:00-02:00', iso: null, precision: null });
    expect(parseTime('0000-01-01').iso).toBeNull();
    expect(parseTime('0001-01-01T00:30+01:00').iso).toBeNull();
    expect(parseTime('9999-12-31T23:59Z').iso).toBe('9999-12-31T23:59:00.000Z');
    // Date.UTC reads 0-99 as 1900-1999.
    expect(parseTime('0023-05-08').iso).toBe('0023-05-08T00:00:00.000Z');
    expect(parseTime('8 May 0023').iso).toBe('0023-05-08T00:00:00.000Z');
  });

  it('finds times inside running text with their spans', () => {
    const text = 'We met at 1:56 pm on 8 May, 2023 and again on 2023-06-01.';
    expect(findTimes(text).map((t) => [text.slice(t.start, t.end), t.time.iso])).toEqual([
      ['1:56 pm on 8 May, 2023', '2023-05-08T13:56:00.000Z'],
      ['2023-06-01', '2023-06-01T00:00:00.000Z'],
    ]);
  });
});

describe('extraction from a document', () => {
  it('gives every item provenance whose span slices the document back to the item', () => {
    const text =
      '# Incident review\n\nFlight ASR1603 departed at 10:40 on 8 May, 2023. The delay cost $1,200 in fees.\n\n- We decided to rebook through Lisbon.\n- Thanks!';
    const source = Source.parse({ kind: 'document', title: 'review', text });
    const x = extractSource(source, { sourceId: 'doc-1', scope, recordedAt });
    expect(x.outcomes).toEqual([{ messageId: null, outcome: 'ok', items: x.items.length, merged: 0 }]);
    expect(x.items.map((i) => i.text)).toEqual([
      'Incident review',
      'Flight ASR1603 departed at 10:40 on 8 May, 2023.',
      'The delay cost $1,200 in fees.',
      'We decided to rebook through Lisbon.',
    ]);
    for (const item of x.items) {
      expect(KnowledgeItem.safeParse(item).success).toBe(true);
      expect(text.slice(...item.provenance.span)).toBe(item.text);
      expect(item.provenance).toMatchObject({ sourceId: 'doc-1', messageIds: [], extractor: 'parley.deterministic', recordedAt });
      expect(item).toMatchObject({ scope: 'room', owner: 'user-1', room: 'room-1', supersededAt: null, speaker: null });
    }
    expect(x.items[1]!.entities.map((e) => e.key)).toEqual(['code:asr1603', 'date:2023-05-08T10:40']);
    expect(x.items[3]!.class).toBe('decision');
  });

  it('records an empty outcome for a document with nothing to keep', () => {
    const x = extractSource({ kind: 'document', title: 'hi', text: 'Thanks! Hi all.' }, { sourceId: 'doc-2', scope, recordedAt });
    expect(x.items).toEqual([]);
    expect(x.outcomes).toEqual([{ messageId: null, outcome: 'empty', items: 0, merged: 0 }]);
  });
});

describe('extraction from a conversation', () => {
  const conversation = Source.parse({
    kind: 'conversation',
    title: 'remote work',
    messages: [
      { id: 'a1', speaker: 'Ada', text: 'Remote teams ship faster. Our 2023 survey of 40 teams showed it.', at: '1:56 pm on 8 May, 2023' },
      { id: 'b1', speaker: 'Bob', text: 'I disagree. Juniors learn less when nobody sits next to them.', at: '2023-05-08T14:03:00Z' },
      { id: 'c1', speaker: 'Cy', text: 'Good point, Bob. Mentoring needs presence.', replyTo: 'b1' },
      { id: 'a2', speaker: 'Ada', text: 'ok' },
      { id: 'a3', speaker: 'Ada', text: 'remote teams ship faster', at: 'sometime in May' },
    ],
  });
  const x = extractSource(conversation, { sourceId: 'conv-1', scope, recordedAt });
  const byText = (t: string) => x.items.find((i) => i.text === t)!;

  it('points each item at its message id and a span within that message', () => {
    for (const item of x.items) {
      const [id] = item.provenance.messageIds;
      const message = conversation.kind === 'conversation' ? conversation.messages.find((m) => m.id === id)! : undefined;
      expect(message!.text.slice(...item.provenance.span)).toBe(item.text);
      expect(item.speaker).toBe(message!.speaker);
    }
    expect(byText('Juniors learn less when nobody sits next to them.').provenance.span).toEqual([12, 61]);
  });

  it('takes valid-from from the message time, parsed from free text or ISO 8601', () => {
    expect(byText('Remote teams ship faster.').validFrom).toBe('2023-05-08T13:56:00.000Z');
    expect(byText('Juniors learn less when nobody sits next to them.').validFrom).toBe('2023-05-08T14:03:00.000Z');
    expect(byText('Mentoring needs presence.').validFrom).toBeNull();
  });

  it('records one outcome per message, nothing dropped silently', () => {
    expect(x.outcomes.map((o) => [o.messageId, o.outcome, o.items, o.merged])).toEqual([
      ['a1', 'ok', 2, 0],
      ['b1', 'ok', 1, 0],
      ['c1', 'ok', 2, 0],
      ['a2', 'empty', 0, 0],
      ['a3', 'ok', 0, 1],
    ]);
  });

  it('merges a repeated statement of the same speaker into the first item, adding the message id', () => {
    expect(byText('Remote teams ship faster.').provenance.messageIds).toEqual(['a1', 'a3']);
    expect(x.duplicates).toBe(1);
  });

  it('never merges the same words from two speakers', () => {
    const y = extractSource(
      {
        kind: 'conversation',
        title: 't',
        messages: [
          { id: '1', speaker: 'Ada', text: 'I prefer green tea.' },
          { id: '2', speaker: 'Bob', text: 'I prefer green tea.' },
        ],
      },
      { sourceId: 's', scope, recordedAt },
    );
    expect(y.items.map((i) => i.speaker)).toEqual(['Ada', 'Bob']);
  });

  it('extracts turn by turn as a room commits them, with the same result as the whole source', () => {
    const live = new SourceExtractor({ sourceId: 'conv-1', scope, recordedAt });
    if (conversation.kind !== 'conversation') throw new Error('unreachable');
    for (const m of conversation.messages) live.add(m);
    expect(live.result()).toEqual(x);
  });
});
