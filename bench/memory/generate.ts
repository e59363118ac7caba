/**
 * The bench/memory data set: seeded, synthetic, written without looking at
 * the extractor's rules (this file imports nothing from platform/knowledge).
 *
 * - `utterances`: labelled sentences for classification, from templates per
 *   class with slot fillers and noise (case, punctuation, fillers, typos,
 *   trailing hedges). A quarter of each class's templates appear only in the
 *   test split ("held-out phrasings"), and the fillers differ by split.
 * - `pairs`: labelled statement pairs for dedup: duplicates (copies, noise,
 *   paraphrases, date formats) and non-duplicates (value changes, near-names,
 *   negations, other subjects).
 * - `debates`: multi-session debates with gold evidence turn ids for
 *   single-hop, multi-hop, knowledge-update, temporal and abstention questions.
 */

export type Split = 'dev' | 'test';
export type Cls = 'fact' | 'claim' | 'definition' | 'decision' | 'question' | 'preference';

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// Fillers per split: the test split's words never appear in dev.
const fillers = {
  dev: {
    person: ['Ada', 'Bob', 'Chen', 'Dana', 'Eli', 'Farah', 'Goran', 'Hana'],
    thing: ['remote work', 'nuclear power', 'static typing', 'four-day weeks', 'open offices', 'unit tests', 'microservices', 'public transit'],
    drink: ['cortado', 'flat white', 'green tea', 'oat latte', 'espresso', 'chai'],
    city: ['Lisbon', 'Oslo', 'Porto', 'Quito', 'Riga', 'Seoul'],
    tool: ['Postgres', 'Redis', 'Terraform', 'Grafana', 'Kafka', 'Vite'],
    project: ['Atlas', 'Beacon', 'Cobalt', 'Delta'],
    term: [
      ['a cortado', 'espresso cut with a little warm milk'],
      ['a monorepo', 'repository holding many projects'],
      ['latency', 'time a request waits before an answer'],
      ['a quorum', 'minimum number of members needed to decide'],
    ],
    code: ['ASR1603', 'KLM2210', 'TX-4410', 'BR7781', 'ZQ3302'],
  },
  test: {
    person: ['Ines', 'Jomo', 'Kira', 'Lars', 'Mina', 'Nadia', 'Omar', 'Priya'],
    thing: ['carbon taxes', 'pair programming', 'code review', 'hybrid schedules', 'rent control', 'electric buses', 'standing desks', 'feature flags'],
    drink: ['macchiato', 'mocha', 'matcha', 'americano', 'rooibos', 'cappuccino'],
    city: ['Nairobi', 'Kyoto', 'Bergen', 'Tallinn', 'Recife', 'Lyon'],
    tool: ['Kubernetes', 'Sentry', 'Ansible', 'Prometheus', 'Nginx', 'Jenkins'],
    project: ['Ember', 'Fjord', 'Granite', 'Harbor'],
    term: [
      ['a macchiato', 'espresso marked with a dash of foam'],
      ['a canary release', 'rollout to a small group of users first'],
      ['throughput', 'amount of work done per unit of time'],
      ['a retro', 'meeting where a team reviews how the last cycle went'],
    ],
    code: ['ASR1605', 'LH4471', 'QF-0092', 'UA9310', 'DL2288'],
  },
};
type Fill = (typeof fillers)['dev'];

const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
function date(r: () => number): string {
  const d = 1 + Math.floor(r() * 28);
  const m = pick(r, months);
  const y = 2021 + Math.floor(r() * 4);
  return pick(r, [`${d} ${m} ${y}`, `${m} ${d}, ${y}`, `${y}-${String(months.indexOf(m) + 1).padStart(2, '0')}-${String(d).padStart(2, '0')}`]);
}
const num = (r: () => number) => String(2 + Math.floor(r() * 950));

type Tpl = (f: Fill, r: () => number) => string;
const P = (f: Fill, r: () => number) => pick(r, f.person);
const T = (f: Fill, r: () => number) => pick(r, f.thing);

const templates: Record<Cls, Tpl[]> = {
  fact: [
    (f, r) => `${P(f, r)} moved to ${pick(r, f.city)} in ${2015 + Math.floor(r() * 9)}.`,
    (f, r) => `Flight ${pick(r, f.code)} left the gate at ${1 + Math.floor(r() * 11)}:${10 + Math.floor(r() * 49)}.`,
    (f, r) => `The ${pick(r, f.project)} team has ${num(r)} open tickets.`,
    (f, r) => `${P(f, r)} joined the company on ${date(r)}.`,
    (f, r) => `Our office in ${pick(r, f.city)} opened last spring.`,
    (f, r) => `The survey had ${num(r)} respondents from ${pick(r, f.city)}.`,
    (f, r) => `${pick(r, f.tool)} was upgraded to version ${1 + Math.floor(r() * 15)} yesterday.`,
    (f, r) => `The report on ${T(f, r)} came out on ${date(r)}.`,
    (f, r) => `${P(f, r)} and ${P(f, r)} wrote the first draft together.`,
    (f, r) => `Ticket prices rose by ${2 + Math.floor(r() * 30)} percent this year.`,
    (f, r) => `the ${pick(r, f.project)} repo has ${num(r)} contributors`,
    (f, r) => `${P(f, r)} is travelling to ${pick(r, f.city)} next week.`,
  ],
  claim: [
    (f, r) => `I think ${T(f, r)} will make teams slower.`,
    (f, r) => `${T(f, r)} is overrated.`,
    (f, r) => `In my view ${T(f, r)} does more harm than good.`,
    (f, r) => `Honestly, ${T(f, r)} should be the default everywhere.`,
    (f, r) => `${T(f, r)} is clearly the better option for small teams.`,
    (f, r) => `I'm convinced ${T(f, r)} won't survive the next downturn.`,
    (f, r) => `There's no way ${T(f, r)} pays for itself.`,
    (f, r) => `${T(f, r)} is probably the biggest waste of time we have.`,
    (f, r) => `I disagree, ${T(f, r)} works fine if you measure it properly.`,
    (f, r) => `If you ask me, ${T(f, r)} is the future.`,
    (f, r) => `${T(f, r)} hurts junior people the most, I'd argue.`,
    (f, r) => `Frankly ${T(f, r)} must be regulated more tightly.`,
  ],
  definition: [
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `${cap(t!)} is a ${d}.`;
    },
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `By ${t!.replace(/^an? /, '')} we mean a ${d}.`;
    },
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `The term ${t!.replace(/^an? /, '')} refers to a ${d}.`;
    },
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `${cap(t!.replace(/^an? /, ''))} is defined as the ${d}.`;
    },
    (f, r) => `${pick(r, f.code).replace(/\d.*/, '')} stands for the internal code of the ${pick(r, f.project)} project.`,
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `${cap(t!)}, in other words, is a ${d}.`;
    },
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `When people say ${t!.replace(/^an? /, '')}, they mean a ${d}.`;
    },
    (f, r) => {
      const [t, d] = pick(r, f.term);
      return `${cap(t!.replace(/^an? /, ''))} means a ${d}.`;
    },
  ],
  decision: [
    (f, r) => `We decided to move ${pick(r, f.project)} to ${pick(r, f.tool)}.`,
    (f, r) => `Let's go with ${pick(r, f.tool)} for the new service.`,
    (f, r) => `The team agreed to ship ${pick(r, f.project)} on ${date(r)}.`,
    (f, r) => `Final decision: ${T(f, r)} stays for another quarter.`,
    (f, r) => `We'll use ${pick(r, f.tool)} going forward.`,
    (f, r) => `OK, ${pick(r, f.city)} it is for the offsite, we've settled it.`,
    (f, r) => `The committee voted to drop ${T(f, r)}.`,
    (f, r) => `From now on we run the ${pick(r, f.project)} standup on Mondays.`,
    (f, r) => `We're going with ${P(f, r)}'s proposal for the ${pick(r, f.project)} launch.`,
    (f, r) => `It's decided, ${pick(r, f.tool)} replaces the old scheduler.`,
    (f, r) => `The plan is to freeze ${pick(r, f.project)} until ${date(r)}, approved by ${P(f, r)}.`,
    (f, r) => `We have chosen ${pick(r, f.city)} as the venue.`,
  ],
  question: [
    (f, r) => `What does ${P(f, r)} think about ${T(f, r)}?`,
    (f, r) => `When does flight ${pick(r, f.code)} leave?`,
    (f, r) => `Is ${pick(r, f.tool)} still the default for new services?`,
    (f, r) => `does anyone know who owns ${pick(r, f.project)}`,
    (f, r) => `How many people signed up for the ${pick(r, f.city)} trip?`,
    (f, r) => `I wonder whether ${T(f, r)} actually saves money.`,
    (f, r) => `Could you explain why ${T(f, r)} failed last time?`,
    (f, r) => `Why did ${P(f, r)} leave the ${pick(r, f.project)} team?`,
    (f, r) => `Any idea where the ${pick(r, f.project)} docs live?`,
    (f, r) => `Should we keep ${T(f, r)} or not?`,
    (f, r) => `Who is presenting on ${date(r)}?`,
    (f, r) => `I'm curious how ${P(f, r)} got the numbers for ${T(f, r)}.`,
  ],
  preference: [
    (f, r) => `I prefer ${pick(r, f.drink)} over anything else in the morning.`,
    (f, r) => `My favourite drink is a ${pick(r, f.drink)}.`,
    (f, r) => `I really like working from ${pick(r, f.city)}.`,
    (f, r) => `I'd rather use ${pick(r, f.tool)} than write it myself.`,
    (f, r) => `I usually order a ${pick(r, f.drink)} after lunch.`,
    (f, r) => `I can't stand ${T(f, r)}.`,
    (f, r) => `I'm a big fan of ${pick(r, f.tool)}.`,
    (f, r) => `${cap(pick(r, f.drink))} is my go-to when I'm tired.`,
    (f, r) => `I love long weekends in ${pick(r, f.city)}.`,
    (f, r) => `I hate meetings before ten.`,
    (f, r) => `${cap(T(f, r))} really isn't my thing.`,
    (f, r) => `I enjoy pairing with ${P(f, r)} on hard bugs.`,
  ],
};
function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

function noise(r: () => number, s: string): string {
  let out = s;
  if (r() < 0.15) out = out.replace(/[.?!]$/, '');
  if (r() < 0.15) out = `${pick(r, ['So', 'Well,', 'Look,', 'Honestly,', 'Right,', 'Hmm,'])} ${out[0]!.toLowerCase()}${out.slice(1)}`;
  if (r() < 0.1) out = out.replace(/([.?!]?)$/, `${pick(r, [', as far as I know', ', for what it is worth', ' for now', ' by the way'])}$1`);
  if (r() < 0.12) out = out.toLowerCase();
  if (r() < 0.08) {
    const ws = out.split(' ');
    const i = ws.findIndex((w, j) => j > 0 && /^[a-z]{6,}$/.test(w));
    if (i > 0) ws[i] = ws[i]!.slice(0, 2) + ws[i]![3] + ws[i]![2] + ws[i]!.slice(4);
    out = ws.join(' ');
  }
  return out;
}

export interface Utterance {
  text: string;
  label: Cls;
  /** From a template that only the test split uses. */
  heldOut: boolean;
}

export function utterances(split: Split, n = 720, seed = 1): Utterance[] {
  const r = rng(seed * 7919 + (split === 'dev' ? 11 : 23));
  const f = fillers[split];
  const classes = Object.keys(templates) as Cls[];
  const out: Utterance[] = [];
  for (let i = 0; i < n; i++) {
    const label = classes[i % classes.length]!;
    const all = templates[label];
    const usable = all.map((t, j) => ({ t, heldOut: j % 4 === 3 })).filter((x) => split === 'test' || !x.heldOut);
    const { t, heldOut } = pick(r, usable);
    out.push({ text: noise(r, t(f, r)), label, heldOut });
  }
  return out;
}

// ── Dedup pairs ─────────────────────────────────────────────────────────────

export type PairKind = 'copy' | 'noise' | 'paraphrase' | 'date-format' | 'value-change' | 'near-name' | 'negation' | 'other-subject';
export interface Pair {
  a: string;
  b: string;
  duplicate: boolean;
  kind: PairKind;
  /** From a statement frame only the test split uses. */
  heldOut: boolean;
}

interface Frame {
  /** Paraphrases of one statement about (subject, value). */
  say: Array<(s: string, v: string) => string>;
  subject: (f: Fill, r: () => number) => string;
  value: (f: Fill, r: () => number) => string;
  negate?: (s: string, v: string) => string;
}
const frames: Frame[] = [
  {
    say: [
      (s, v) => `${s}'s usual coffee is a ${v}.`,
      (s, v) => `${s} usually orders a ${v}.`,
      (s, v) => `A ${v} is what ${s} normally drinks.`,
      (s, v) => `${s} typically has a ${v} in the morning.`,
    ],
    subject: (f, r) => pick(r, f.person),
    value: (f, r) => pick(r, f.drink),
    negate: (s, v) => `${s} no longer drinks ${v}.`,
  },
  {
    say: [(s, v) => `Flight ${s} departs at ${v}.`, (s, v) => `${s} leaves at ${v}.`, (s, v) => `The departure time of flight ${s} is ${v}.`],
    subject: (f, r) => pick(r, f.code),
    value: (_f, r) => `${6 + Math.floor(r() * 14)}:${pick(r, ['05', '15', '30', '40', '55'])}`,
  },
  {
    say: [
      (s, v) => `${s} lives in ${v}.`,
      (s, v) => `${s} is based in ${v}.`,
      (s, v) => `${s} resides in ${v} these days.`,
      (s, v) => `${s}'s home is in ${v}.`,
    ],
    subject: (f, r) => pick(r, f.person),
    value: (f, r) => pick(r, f.city),
    negate: (s, v) => `${s} does not live in ${v}.`,
  },
  {
    say: [(s, v) => `The ${s} budget is ${v} euros.`, (s, v) => `${s} has a budget of ${v} euros.`, (s, v) => `The budget for ${s} comes to ${v} euros.`],
    subject: (f, r) => pick(r, f.project),
    value: (_f, r) => `${10 + Math.floor(r() * 90)},000`,
  },
  {
    say: [(s, v) => `The ${s} team deploys with ${v}.`, (s, v) => `${s} uses ${v} for deployments.`, (s, v) => `Deployments for ${s} go through ${v}.`],
    subject: (f, r) => pick(r, f.project),
    value: (f, r) => pick(r, f.tool),
    negate: (s, v) => `The ${s} team does not deploy with ${v}.`,
  },
  {
    say: [(s, v) => `The ${s} review is on ${v}.`, (s, v) => `${s} gets reviewed on ${v}.`, (s, v) => `On ${v} we review ${s}.`],
    subject: (f, r) => pick(r, f.project),
    value: (_f, r) => `${1 + Math.floor(r() * 28)} ${pick(r, months)} 2024`,
  },
  // Held out: only the test split states these.
  {
    say: [(s, v) => `${s} works at ${v}.`, (s, v) => `${s} is employed by ${v}.`, (s, v) => `${v} employs ${s}.`, (s, v) => `${s} has a job at ${v}.`],
    subject: (f, r) => pick(r, f.person),
    value: (f, r) => `${pick(r, f.project)} Labs`,
    negate: (s, v) => `${s} no longer works at ${v}.`,
  },
  {
    say: [(s, v) => `The ${s} standup starts at ${v}.`, (s, v) => `${s}'s standup begins at ${v}.`, (s, v) => `We hold the ${s} standup at ${v}.`],
    subject: (f, r) => pick(r, f.project),
    value: (_f, r) => `${8 + Math.floor(r() * 3)}:${pick(r, ['00', '15', '30', '45'])}`,
  },
];
const heldOutFrames = 2;

function nearName(r: () => number, s: string): string {
  if (/\d/.test(s)) {
    const i = s.search(/\d(?=\D*$)/);
    const d = Number(s[i]);
    return s.slice(0, i) + String((d + 1 + Math.floor(r() * 8)) % 10) + s.slice(i + 1);
  }
  // One letter changed, added or dropped: Dana → Dena, Eli → Elia.
  const i = 1 + Math.floor(r() * (s.length - 1));
  return pick(r, [s.slice(0, i) + 'a' + s.slice(i), s.slice(0, i) + s.slice(i + 1), s.slice(0, i) + (s[i] === 'e' ? 'i' : 'e') + s.slice(i + 1)]);
}

function isoDay(s: string): string {
  const m = /^(\d+) (\w+) (\d{4})$/.exec(s);
  return m ? `${m[3]}-${String(months.indexOf(m[2]!) + 1).padStart(2, '0')}-${m[1]!.padStart(2, '0')}` : s;
}

function pairNoise(r: () => number, s: string): string {
  let out = s;
  const ops = [
    () => out.toLowerCase(),
    () => out.replace(/[.]$/, ''),
    () => `${pick(r, ['Well,', 'So', 'Okay so', 'Honestly,'])} ${out[0]!.toLowerCase()}${out.slice(1)}`,
    () => out.replace(/does not/g, "doesn't").replace(/is not/g, "isn't"),
    () => out.replace(/\s+/g, '  '),
    () => out.toUpperCase(),
  ];
  const n = 1 + Math.floor(r() * 2);
  for (let i = 0; i < n; i++) out = pick(r, ops)();
  return out;
}

export function pairs(split: Split, n = 600, seed = 1): Pair[] {
  const r = rng(seed * 104729 + (split === 'dev' ? 5 : 9));
  const f = fillers[split];
  const out: Pair[] = [];
  const kinds: Array<[PairKind, number]> = [
    ['copy', 0.04],
    ['noise', 0.16],
    ['paraphrase', 0.25],
    ['date-format', 0.05],
    ['value-change', 0.25],
    ['near-name', 0.12],
    ['negation', 0.06],
    ['other-subject', 0.07],
  ];
  while (out.length < n) {
    let x = r();
    let kind: PairKind = 'copy';
    for (const [k, w] of kinds) {
      if (x < w) {
        kind = k;
        break;
      }
      x -= w;
    }
    const frame = pick(r, split === 'test' ? frames : frames.slice(0, frames.length - heldOutFrames));
    const s = frame.subject(f, r);
    const v = frame.value(f, r);
    const say = pick(r, frame.say);
    const heldOut = frames.indexOf(frame) >= frames.length - heldOutFrames;
    const a = say(s, v);
    switch (kind) {
      case 'copy':
        out.push({ a, b: a, duplicate: true, kind, heldOut });
        break;
      case 'noise':
        out.push({ a, b: pairNoise(r, a), duplicate: true, kind, heldOut });
        break;
      case 'paraphrase': {
        const other = pick(
          r,
          frame.say.filter((x) => x !== say),
        );
        out.push({ a, b: r() < 0.3 ? pairNoise(r, other(s, v)) : other(s, v), duplicate: true, kind, heldOut });
        break;
      }
      case 'date-format': {
        if (frame !== frames[5]) continue;
        out.push({ a, b: say(s, isoDay(v)), duplicate: true, kind, heldOut });
        break;
      }
      case 'value-change': {
        let v2 = frame.value(f, r);
        for (let i = 0; v2 === v && i < 10; i++) v2 = frame.value(f, r);
        if (v2 === v) continue;
        out.push({ a, b: r() < 0.5 ? say(s, v2) : pick(r, frame.say)(s, v2), duplicate: false, kind, heldOut });
        break;
      }
      case 'near-name':
        out.push({ a, b: say(nearName(r, s), v), duplicate: false, kind, heldOut });
        break;
      case 'negation':
        if (!frame.negate) continue;
        out.push({ a, b: frame.negate(s, v), duplicate: false, kind, heldOut });
        break;
      case 'other-subject': {
        let s2 = frame.subject(f, r);
        for (let i = 0; s2 === s && i < 10; i++) s2 = frame.subject(f, r);
        if (s2 === s) continue;
        out.push({ a, b: say(s2, v), duplicate: false, kind, heldOut });
        break;
      }
    }
  }
  return out;
}

// ── Debates ─────────────────────────────────────────────────────────────────

export interface Turn {
  id: string;
  speaker: string;
  text: string;
  at: string;
}
export interface Question {
  kind: 'single-hop' | 'multi-hop' | 'knowledge-update' | 'temporal' | 'abstention';
  question: string;
  /** Turn ids holding the answer; empty for abstention. For knowledge-update, the newest value's turn comes first. */
  evidence: string[];
}
export interface Debate {
  id: string;
  turns: Turn[];
  questions: Question[];
}

/**
 * The harder set's options (all off: the standard set, unchanged). More
 * sessions make larger room scopes; distractors are turns that share a
 * fact's words (a city, a drink) without stating the speaker's own fact;
 * paraphrased questions do not echo the fact's wording, with phrasings per
 * split (the test split's never appear in dev).
 */
export interface DebateOptions {
  sessions?: number;
  distractors?: boolean;
  paraphrase?: boolean;
}

const askDrink: Record<Split, ((p: string) => string)[]> = {
  dev: [(p) => `What coffee does ${p} usually get?`, (p) => `Which coffee does ${p} drink these days?`, (p) => `What does ${p} like to drink in the morning?`],
  test: [(p) => `What's ${p}'s go-to coffee order?`, (p) => `What does ${p} order at the café?`, (p) => `Which drink does ${p} pick when we grab coffee?`],
};
const askCity: Record<Split, ((p: string) => string)[]> = {
  dev: [(p) => `Which city is ${p} based in?`, (p) => `Where does ${p} live?`],
  test: [(p) => `What city does ${p} call home?`, (p) => `Where is ${p} living at the moment?`],
};
const distractorsOf = (city: string, drink: string): string[] => [
  `I read that ${city} is building a new tram line.`,
  `Our offsite might be in ${city} next spring.`,
  `My brother moved to ${city} last year.`,
  `The ${drink} at the conference venue was awful.`,
  `Someone left a cold ${drink} in the meeting room again.`,
  `The café downstairs started selling ${drink} in paper cups.`,
];

export function debates(split: Split, count = 20, seed = 1, opts: DebateOptions = {}): Debate[] {
  const r = rng(seed * 15485863 + (split === 'dev' ? 3 : 7) + (opts.distractors || opts.paraphrase || opts.sessions ? 101 : 0));
  const f = fillers[split];
  const out: Debate[] = [];
  const opinions = [
    (t: string) => `I think ${t} is a net positive for most teams.`,
    (t: string) => `That ignores the cost: ${t} slows down onboarding.`,
    (t: string) => `Exactly, and our numbers from last year back that up.`,
    (t: string) => `I'm not convinced, the studies on ${t} are small.`,
    (t: string) => `What would change your mind about ${t}?`,
    (t: string) => `Fair point, but we should measure it before deciding.`,
  ];
  for (let d = 0; d < count; d++) {
    const speakers = [pick(r, f.person), pick(r, f.person), pick(r, f.person)].filter((x, i, xs) => xs.indexOf(x) === i);
    const topic = pick(r, f.thing);
    const turns: Turn[] = [];
    const questions: Question[] = [];
    const facts: Array<{ speaker: string; kind: 'drink' | 'city'; value: string; turn: string; session: number }> = [];
    for (let session = 1; session <= (opts.sessions ?? 3); session++) {
      const day = 1 + session * 3;
      for (let k = 1; k <= 8; k++) {
        const speaker = speakers[(k - 1) % speakers.length]!;
        const id = `d${d}s${session}t${k}`;
        const at = `${1 + (k % 11)}:${String(10 + k * 3).padStart(2, '0')} pm on ${day} May, 2023`;
        let text: string;
        // Turns 2 and 5 of every session state a fact (the same speakers each session, so values change and
        // supersede); turn 7 of the first session gives another speaker a coffee, for the multi-hop question.
        const secondDrinker = session === 1 && k === 7 && speaker !== speakers[(2 - 1) % speakers.length];
        if (k === 2 || k === 5 || secondDrinker) {
          const kind = k === 5 ? 'city' : 'drink';
          // A later fact of the same person and kind is a change (the question calls it a knowledge update):
          // never the value they last stated. Before, a repeat of the same value was asked as an update.
          const last = facts.filter((x) => x.speaker === speaker && x.kind === kind).at(-1)?.value;
          const choices = (kind === 'drink' ? f.drink : f.city).filter((v) => v !== last);
          const value = pick(r, choices);
          text = kind === 'drink' ? `Side note: my usual coffee is a ${value}.` : `For context, I live in ${value} now.`;
          facts.push({ speaker, kind, value, turn: id, session });
        } else if (opts.distractors && (k === 3 || k === 6 || k === 8) && r() < 0.7) {
          text = pick(r, distractorsOf(pick(r, f.city), pick(r, f.drink)));
        } else text = pick(r, opinions)(topic);
        turns.push({ id, speaker, text, at });
      }
    }
    for (const fact of facts) {
      const later = facts.filter((x) => x.speaker === fact.speaker && x.kind === fact.kind && x.session > fact.session);
      const what = fact.kind === 'drink' ? `usual coffee` : `home city`;
      if (later.length === 0) {
        const earlier = facts.filter((x) => x.speaker === fact.speaker && x.kind === fact.kind && x.session < fact.session);
        const ask = opts.paraphrase ? pick(r, (fact.kind === 'drink' ? askDrink : askCity)[split])(fact.speaker) : `What is ${fact.speaker}'s ${what}?`;
        questions.push({
          kind: earlier.length ? 'knowledge-update' : 'single-hop',
          question: ask,
          evidence: [fact.turn, ...earlier.map((e) => e.turn).reverse()],
        });
        questions.push({ kind: 'temporal', question: `When did ${fact.speaker} last mention their ${what}?`, evidence: [fact.turn] });
      }
    }
    // Two different people's current coffees (each one's latest drink fact). Before, this took the first two
    // drink facts, which were always one speaker's, the first of them superseded.
    const drinkers = [...new Set(facts.filter((x) => x.kind === 'drink').map((x) => x.speaker))].map((who) =>
      facts.filter((x) => x.kind === 'drink' && x.speaker === who).at(-1)!,
    );
    if (drinkers.length >= 2)
      questions.push({
        kind: 'multi-hop',
        question: `Do ${drinkers[0]!.speaker} and ${drinkers[1]!.speaker} drink the same coffee?`,
        evidence: [drinkers[0]!.turn, drinkers[1]!.turn],
      });
    questions.push({ kind: 'abstention', question: `What is ${speakers[0]}'s favourite airline?`, evidence: [] });
    out.push({ id: `d${d}`, turns, questions });
  }
  return out;
}
