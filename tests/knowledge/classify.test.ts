import { describe, expect, it } from 'vitest';
import { assignTopic, classify, extractEntities, nameKey, stanceOf } from '../../platform/knowledge/index.ts';

describe('classification', () => {
  it.each([
    ['What time does the flight leave?', 'question'],
    ['does anyone know when the review starts', 'question'],
    ['We decided to move the launch to June.', 'decision'],
    ["Let's go with Postgres for the record.", 'decision'],
    ['I prefer tea over coffee.', 'preference'],
    ['My favourite editor is Helix.', 'preference'],
    ['A cortado is a kind of coffee cut with warm milk.', 'definition'],
    ['RAG stands for retrieval-augmented generation.', 'definition'],
    ['I think remote work is better for focus.', 'claim'],
    ['Nuclear power should be part of the mix.', 'claim'],
    ['The flight departed at 10:40 on 8 May, 2023.', 'fact'],
    ['The library has 1,200 members.', 'fact'],
  ])('%s → %s', (sentence, cls) => {
    expect(classify(sentence, extractEntities(sentence)).class).toBe(cls);
  });
});

describe('stance', () => {
  it.each([
    ['I disagree, offices matter.', 'rebuts'],
    ["That's not true at all.", 'rebuts'],
    ['But the data says otherwise.', 'rebuts'],
    ['Exactly, and the numbers back this up.', 'supports'],
    ['Good point about the mentoring.', 'supports'],
    ['I agree, but only for seniors.', 'rebuts'],
    ['The meeting is at noon.', 'neutral'],
  ])('%s → %s', (sentence, stance) => {
    expect(stanceOf(sentence)).toBe(stance);
  });
});

describe('entities', () => {
  it('finds codes, numbers with units, dates and names, each once, with spans', () => {
    const s = 'Flight ASR1603 with Ada Lovelace took 3.5 hours on 8 May 2023 and cost $1,200 for 42% of NASA staff.';
    const got = extractEntities(s).map((e) => [e.kind, s.slice(...e.span), e.key]);
    expect(got).toEqual([
      ['code', 'ASR1603', 'code:asr1603'],
      ['name', 'Ada Lovelace', 'name:ada lovelace'],
      ['number', '3.5 hours', 'number:3.5hours'],
      ['date', '8 May 2023', 'date:2023-05-08'],
      ['number', '$1,200', 'number:$1,200'],
      ['number', '42%', 'number:42%'],
      ['name', 'NASA', 'name:nasa'],
    ]);
  });

  it('does not take a capitalised sentence opener for a name unless the source uses it mid-sentence', () => {
    expect(extractEntities('Coffee keeps me awake.')).toEqual([]);
    expect(extractEntities('Postgres keeps the record.', new Set(['Postgres'])).map((e) => e.key)).toEqual(['name:postgres']);
  });

  it('keys a possessive as the name itself, as a speaker is keyed', () => {
    const s = "What is Ada's usual coffee, and is it Grace’s too?";
    expect(extractEntities(s).map((e) => [s.slice(...e.span), e.key])).toEqual([
      ["Ada's", 'name:ada'],
      ['Grace’s', 'name:grace'],
    ]);
    expect(nameKey('Ada')).toBe('name:ada');
  });
});

describe('topics', () => {
  it('assigns lexicon topics, else the first named thing, else a content word', () => {
    expect(assignTopic('My usual coffee is a cortado.', [])).toBe('food-drink');
    expect(assignTopic('Flight ASR1603 departs from gate 12.', [])).toBe('travel');
    const s = 'Zorblax reviewed Quentin yesterday.';
    expect(assignTopic(s, extractEntities(s, new Set(['Zorblax'])))).toBe('entity:zorblax');
    expect(assignTopic('the quibbling persisted.', [])).toBe('word:quibbl');
  });
});
