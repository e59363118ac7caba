/**
 * Whom a statement is about (platform/knowledge/about.ts): the rule the
 * entity signal of knowledge search ranks by.
 */
import { describe, expect, it } from 'vitest';
import { aboutSpeaker, isAbout } from '../../platform/knowledge/about.ts';

describe('aboutSpeaker', () => {
  it.each([
    ['For context, I live in Lisbon now.', true],
    ['Side note: my usual coffee is a cortado.', true],
    ["I'm moving to Riga in May.", true],
    ['Honestly, I’ve never liked open offices.', true],
    ['That works for me.', true],
    ['The café downstairs started selling espresso in paper cups.', false],
    ['Someone left a cold chai in the meeting room again.', false],
    ['Our offsite might be in Oslo next spring.', false],
    // The first person only introduces someone else's news.
    ['I read that Lisbon is building a new tram line.', false],
    ['Funny thing: I heard the tram line is delayed.', false],
    ['My brother moved to Porto last year.', false],
    ['By the way, my best friend lives in Quito.', false],
    ['My boss says the deadline is Friday.', false],
    // A word that only looks like the pronoun.
    ['The iPhone launch was in June.', false],
  ])('%j → %s', (text, expected) => {
    expect(aboutSpeaker(text)).toBe(expected);
  });
});

describe('isAbout', () => {
  const item = (text: string, speakerKey: string | null, entities: string[] = []) => ({ text, speakerKey, entities: entities.map((key) => ({ key })) });
  it('is about a person it names, whoever says it', () => {
    expect(isAbout(item('Hana lives in Lisbon.', 'name:ada', ['name:hana']), 'name:hana')).toBe(true);
  });
  it('is about its speaker only when the speaker talks about themselves', () => {
    expect(isAbout(item('I live in Lisbon now.', 'name:hana'), 'name:hana')).toBe(true);
    expect(isAbout(item('The café started selling espresso.', 'name:hana'), 'name:hana')).toBe(false);
    expect(isAbout(item('I live in Lisbon now.', 'name:hana'), 'name:ada')).toBe(false);
    expect(isAbout(item('I live in Lisbon now.', null), 'name:hana')).toBe(false);
  });
});
