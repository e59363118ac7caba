/**
 * Whom a statement is about, as far as the words show it: the people it
 * names, and its speaker when the speaker talks about themselves.
 *
 * Every item of a speaker carries the speaker's name among its entities
 * (records.ts: who said it is part of what it is about), so a question that
 * names a person ("Which city is Hana based in?") finds everything that
 * person said. That is the right candidate set, in the wrong order when the
 * person also said things about other people or things: "The café
 * downstairs started selling espresso" and "My brother moved to Porto" are
 * Hana's words, not facts about Hana, and should not answer for her own
 * coffee or city ahead of "my usual coffee is a cortado".
 *
 * The rule reads the statement's grammatical person, which needs no model:
 * - a first-person singular word (I, me, my, mine, myself and their
 *   contractions) makes it about its speaker;
 * - unless that word only introduces someone else's news: reported speech
 *   ("I read that…", "I heard…", "I saw that…"), or a close relation as the
 *   subject ("my brother moved…", "my boss says…"), which is about the
 *   relation.
 */

const firstPerson = /\b(?:i|me|my|mine|myself)\b|\bi['’](?:m|ve|d|ll)\b/i;

/** Reported speech: the speaker passes on what they read, heard or were told. */
const reported = /^\W*(?:[^,:;.]{0,40}[,:]\s*)?(?:i\s+(?:(?:just|recently|once|also)\s+)?(?:read|heard|saw|noticed|was told|learned|learnt)\b)/i;

/** "my <relation>" opening the statement: its subject is the relation, not the speaker. */
const relationSubject =
  /^\W*(?:[^,:;.]{0,40}[,:]\s*)?my\s+(?:(?:older|younger|little|big|best|old|new|former|late|ex-?)\s+)?(?:brother|sister|mother|mom|mum|father|dad|parents?|son|daughter|kids?|children|wife|husband|partner|boyfriend|girlfriend|fianc[eé]e?|friend|friends|colleague|colleagues|coworker|co-worker|boss|manager|neighbou?r|cousin|aunt|uncle|grandmother|grandfather|grandma|grandpa|roommate|flatmate|team|family)\b/i;

/** Whether a statement, said by its speaker, is about that speaker. */
export function aboutSpeaker(text: string): boolean {
  if (!firstPerson.test(text)) return false;
  return !reported.test(text) && !relationSubject.test(text);
}

/**
 * Whether an item is about the entity `key`: it names the entity in its own
 * words, or the entity is its speaker and the speaker talks about themselves.
 */
export function isAbout(item: { text: string; entities: readonly { key: string }[]; speakerKey: string | null }, key: string): boolean {
  if (item.entities.some((e) => e.key === key)) return true;
  return item.speakerKey === key && aboutSpeaker(item.text);
}
