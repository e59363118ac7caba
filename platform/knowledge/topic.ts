/**
 * Topic assignment: a small lexicon of broad topics over stemmed words; the
 * topic with the most hits wins (ties: the lexicon's order). A sentence with
 * no lexicon word takes its first name or code (`entity:asr1603`), else its
 * longest content word (`word:postgres`), so items about the same thing still
 * share a topic.
 */
import type { Entity } from '../../shared/index.ts';
import { stem, stopwords, words } from './text.ts';

const lexicon: Array<[string, string]> = [
  [
    'food-drink',
    'coffee tea espresso latte cortado cappuccino flat white mocha americano drink beer wine juice water food eat lunch dinner breakfast restaurant cook recipe meal snack vegan vegetarian pizza pasta sushi cake chocolate',
  ],
  ['travel', 'flight fly airport plane train trip travel hotel booking gate depart arrive airline luggage visa passport holiday vacation journey'],
  [
    'work',
    'project deadline meeting team manager client release sprint roadmap budget hire hiring office colleague task milestone launch deliverable stakeholder job role',
  ],
  [
    'technology',
    'database server api code software deploy cloud postgres redis kubernetes docker model cache query index latency bug test framework library language python typescript rust javascript llm vector',
  ],
  ['health', 'health doctor sleep exercise run running gym diet medicine hospital symptom vaccine fitness walk yoga stress'],
  ['finance', 'price cost money pay salary invest investment stock market tax inflation rent loan bank revenue profit dollar euro pound spend'],
  ['policy', 'policy law regulation government vote election tax ban public rule council minister parliament subsidy'],
  ['environment', 'climate carbon emission energy solar wind nuclear coal pollution recycle green renewable electric battery'],
  ['education', 'school university course student teacher exam study learn lesson class degree research paper'],
  ['sport', 'football soccer tennis basketball match game team score league player race cycling marathon'],
  ['family', 'family kid child children parent mother father sister brother wife husband partner dog cat pet home house'],
  [
    'schedule',
    'monday tuesday wednesday thursday friday saturday sunday tomorrow today tonight week weekend morning afternoon evening schedule calendar appointment',
  ],
];
const topicOf = new Map<string, string>();
for (const [topic, list] of lexicon) for (const w of list.split(' ')) if (!topicOf.has(stem(w))) topicOf.set(stem(w), topic);
const order = new Map(lexicon.map(([t], i) => [t, i]));

export function assignTopic(sentence: string, entities: readonly Entity[]): string {
  const hits = new Map<string, number>();
  const ws = words(sentence);
  for (const w of ws) {
    const t = topicOf.get(stem(w));
    if (t) hits.set(t, (hits.get(t) ?? 0) + 1);
  }
  let best: string | null = null;
  for (const [t, n] of hits) {
    const b = best === null ? 0 : hits.get(best)!;
    if (n > b || (n === b && order.get(t)! < order.get(best!)!)) best = t;
  }
  if (best) return best;
  const named = entities.find((e) => e.kind === 'code' || e.kind === 'name');
  if (named) return `entity:${named.key.slice(named.key.indexOf(':') + 1)}`;
  let longest = '';
  for (const w of ws) if (!stopwords.has(w) && !/\d/.test(w) && w.length > longest.length) longest = w;
  return longest ? `word:${stem(longest)}` : 'general';
}
