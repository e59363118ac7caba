/**
 * Classification of a sentence into the six knowledge classes, and its stance
 * towards the message it answers. Rules over surface features, scored: each
 * class collects the weights of the cues it matches, the highest score wins,
 * and a statement with no cue is a fact. No model is involved, so the same
 * sentence always gets the same class.
 *
 * The cue lists were tuned on the dev split of bench/memory only.
 */
import type { Entity, KnowledgeClass, Stance } from '../../shared/index.ts';

interface Cue {
  re: RegExp;
  w: number;
}
const cue = (w: number, re: RegExp): Cue => ({ re, w });

const interrogative = /^(?:(?:so|and|but|ok|okay|well|hey|also|then|honestly|quick question)[,:]?\s+)*(?:who|what|when|where|why|which|whose|whom|how)\b/i;
const inverted =
  /^(?:(?:so|and|but|ok|okay|well|hey|also|then)[,]?\s+)*(?:is|are|was|were|do|does|did|can|could|would|will|shall|has|have|had|should|may|might|isn't|aren't|doesn't|don't|didn't|won't|wouldn't|couldn't|shouldn't|haven't|hasn't)\s+(?:i|you|we|they|he|she|it|there|that|this|the|a|an|any|anyone|anybody|someone|somebody|everyone|our|your|their|his|her|its|[\p{Lu}])/iu;

const cues: Record<Exclude<KnowledgeClass, 'fact'>, Cue[]> = {
  question: [
    cue(4, /\?\s*["'”’)]*$/),
    cue(2.5, interrogative),
    cue(2.5, inverted),
    cue(
      3,
      /\b(?:i (?:wonder|am wondering|'m wondering|was wondering)|any (?:idea|thoughts)|does anyone know|do you know|can (?:someone|anyone|you) (?:tell|explain|confirm)|i(?:'d| would) like to know|curious (?:whether|if|what|how|why)|not sure (?:whether|if)|is it true that|wondering (?:whether|if|what|how|why))\b/i,
    ),
  ],
  definition: [
    cue(4, /\b(?:is|are) (?:defined as|the (?:term|name|word) for|what we call|called)\b/i),
    cue(4, /\b(?:refers? to|stands? for|is short for|is an? (?:abbreviation|acronym) (?:for|of)|denotes?)\b/i),
    cue(3.5, /\b(?:by|with) ["'“‘]?[\w -]{1,40}["'”’]?,? (?:we|i|they|people) (?:mean|refer to)\b/i),
    cue(3.5, /\b(?:the (?:term|word|phrase|notion|concept)|definition of|is known as|are known as)\b/i),
    cue(3, /\bmeans?\b(?! (?:that|we|you|i|it|they)\b)/i),
    cue(
      2.5,
      /^["'“]?(?:an? |the )?[\w"'”-]+(?: [\w"'”-]+){0,3},? (?:is|are) (?:an?|the) (?:[\w-]+ ){0,4}(?:kind|type|form|sort|class|category|method|technique|process|practice|measure|unit|way|set|style|pattern|tool|protocol|document|mechanism|approach)s? (?:of|that|which|for|where|in which|used|to)\b/i,
    ),
    cue(1.5, /^["'“]?(?:an? |the )?[\w"'”-]+(?: [\w"'”-]+){0,2},? (?:is|are) (?:an?|the) [\w -]{3,60} (?:that|which|who|whose|where|used to|in which)\b/i),
    cue(2, /\bi\.e\.|\bin other words\b/i),
  ],
  decision: [
    cue(
      4,
      /\b(?:we|i|they|the (?:team|group|board|committee|panel|room))(?:'ve| have| has)? (?:(?:all|finally|now|just|unanimously) )?(?:decided|agreed|chose|chosen|settled|resolved|opted|committed|voted|concluded)\b/i,
    ),
    cue(3.5, /\b(?:decided|agreed|resolved|voted|opted) (?:to|on|that|for)\b/i),
    cue(3.5, /\bthe (?:final )?(?:decision|plan|verdict|resolution|consensus|call|choice) (?:is|was|will be)\b/i),
    cue(3.5, /^(?:decision|resolved|agreed|verdict|outcome|action item)\s*[:\-–]/i),
    cue(3, /\blet(?:'s| us) (?:go with|use|move|adopt|ship|pick|stick|switch|settle|lock|keep|drop|start|schedule|book|make)\b/i),
    cue(
      3,
      /\bwe(?:'ll| will| are going to|'re going to| shall) (?:go with|use|adopt|ship|switch|move|proceed|launch|drop|keep|stick|book|hold|postpone|schedule|start|migrate|cancel)\b/i,
    ),
    cue(
      3,
      /\b(?:going (?:forward|ahead) with|go ahead with|we'?re going with|it'?s decided|final call|signed off|sign-off|approved|greenlit|green-lit|locked in|is settled|it is settled)\b/i,
    ),
    cue(2.5, /\b(?:from now on|effective (?:immediately|today|monday)|starting (?:next|tomorrow|monday)),? we\b/i),
  ],
  preference: [
    cue(
      4,
      /\bi (?:really |much |strongly |definitely |honestly |actually |genuinely |kind of |sort of )?(?:prefer|like|love|enjoy|adore|hate|dislike|detest|loathe|fancy|can'?t stand|cannot stand)\b/i,
    ),
    cue(4, /\b(?:i'?m|i am) (?:a (?:big |huge )?fan of|not a fan of|into|partial to|fond of|keen on|not keen on|a sucker for)\b/i),
    cue(4, /\bi(?:'d| would) (?:much )?(?:rather|sooner)\b/i),
    cue(4, /\bmy (?:favou?rite|preferred|go-to|usual|pick|choice)\b/i),
    cue(
      3,
      /\bi (?:usually|always|normally|typically|tend to|generally|mostly|often) (?:drink|eat|order|take|have|use|go|wear|listen|watch|read|pick|choose|get|start|spend|buy|book|fly|travel|work)\b/i,
    ),
    cue(3, /\b(?:is|are)(?:n't| not) (?:really )?my (?:thing|cup of tea|style|taste)\b|\bworks (?:best )?for me\b|\bsuits me\b/i),
    cue(2.5, /\bfor me,? (?:nothing beats|[\w ]{1,30} (?:beats|wins|is best))\b/i),
  ],
  claim: [
    cue(2, /\bi (?:think|believe|reckon|suspect|feel|guess|would argue|'d argue|argue|maintain|contend|doubt|bet)\b/i),
    cue(2, /\b(?:i'?m|i am) (?:convinced|confident|sure|certain|skeptical|sceptical)\b/i),
    cue(2, /\b(?:in my (?:view|opinion|experience)|to me|it seems|it appears|i'?d say|if you ask me|my (?:view|take|position|sense) is|the way i see it)\b/i),
    cue(1.5, /\b(?:arguably|clearly|obviously|certainly|undoubtedly|surely|probably|likely|unlikely|perhaps|presumably|evidently|definitely|inevitably)\b/i),
    cue(1.5, /\b(?:should|must|ought to|needs? to|has to|have to|cannot be|can't be)\b/i),
    cue(
      1.5,
      /\b(?:better|worse|best|worst|overrated|underrated|harmful|beneficial|dangerous|essential|crucial|pointless|useless|effective|ineffective|wrong|unfair|superior|inferior|vital|misguided|flawed|reckless|outdated|unsustainable|inevitable|healthier|safer|riskier|cheaper in the long run|a mistake|a bad idea|a good idea|the answer|the future|the problem|overblown|exaggerated|irresponsible|unrealistic|naive)\b/i,
    ),
    cue(
      2,
      /\b(?:i (?:fully |completely |totally |strongly )?(?:agree|disagree)|that'?s (?:not (?:true|right|correct|the case)|wrong|false|misleading|nonsense)|on the contrary|you'?re (?:wrong|mistaken|right)|good point|fair point|i don'?t buy)\b/i,
    ),
    cue(1, /\b(?:will|would) (?:never|always|inevitably|eventually|certainly|surely|probably)\b/i),
    cue(1, /\b(?:the (?:evidence|data|research|studies) (?:shows?|suggests?|proves?)|there is no (?:way|evidence|reason))\b/i),
  ],
};

/** Facts have no cue of their own; concrete content lends a statement weight as one. */
function factScore(sentence: string, entities: readonly Entity[]): number {
  let s = 1;
  if (entities.some((e) => e.kind === 'number' || e.kind === 'date' || e.kind === 'code')) s += 1;
  if (
    /\b(?:was|were|had|did|happened|took place|reported|released|launched|founded|measured|recorded|costs?|weighs?|lasts?|departs?|arrives?|opened|closed|moved|started|ended|grew|fell|rose)\b/i.test(
      sentence,
    )
  )
    s += 0.5;
  return s;
}

export interface Classification {
  class: KnowledgeClass;
  scores: Record<KnowledgeClass, number>;
}

export function classify(sentence: string, entities: readonly Entity[] = []): Classification {
  const scores: Record<KnowledgeClass, number> = { fact: factScore(sentence, entities), claim: 0, definition: 0, decision: 0, question: 0, preference: 0 };
  for (const [cls, list] of Object.entries(cues) as Array<[Exclude<KnowledgeClass, 'fact'>, Cue[]]>) {
    let sum = 0;
    for (const c of list) if (c.re.test(sentence)) sum += c.w;
    scores[cls] = sum;
  }
  let best: KnowledgeClass = 'fact';
  for (const cls of ['question', 'decision', 'preference', 'definition', 'claim'] as const) if (scores[cls] > scores[best]) best = cls;
  return { class: best, scores };
}

const supportCues = [
  /^(?:yes|yeah|yep|exactly|absolutely|agreed|right|true|indeed|correct|precisely|definitely|totally|same here|\+1)\b/i,
  /\b(?:i (?:fully |completely |totally |strongly |entirely )?agree|good point|fair point|great point|well said|that'?s (?:right|true|correct|fair|a good point|spot on)|spot on|building on|to add to|adding to|i'?m with|seconded|you'?re right|makes sense|as \w+ (?:said|noted|pointed out)|i second|that matches|same experience|backs? (?:this|that) up|confirms? (?:this|that|it))\b/i,
];
const rebutCues = [
  /^(?:no|nope|nah|wrong|not really|not quite|hardly)\b/i,
  /\b(?:i (?:strongly |completely |totally |respectfully |entirely )?disagree|that'?s (?:not (?:true|right|correct|the case|how)|wrong|false|incorrect|misleading|nonsense|a stretch)|on the contrary|i don'?t (?:think so|buy|agree|see it)|quite the opposite|that ignores|you'?re (?:wrong|mistaken|missing|ignoring|overlooking)|not (?:so fast|necessarily|convinced)|i doubt|that doesn'?t (?:hold|follow|work)|i'?m not (?:sure|convinced) (?:that|about)|counterpoint|the problem with that|that overlooks|but that|agree,? but|point,? but|true,? but)\b/i,
  /^(?:but|however|yet|except|actually|well, actually)\b/i,
];

/** The stance a sentence takes towards the message it answers. */
export function stanceOf(sentence: string): Stance {
  let support = 0;
  let rebut = 0;
  for (const re of supportCues) if (re.test(sentence)) support++;
  for (const re of rebutCues) if (re.test(sentence)) rebut++;
  // "I agree, but..." is a rebuttal with manners; "No doubt, that's right" is support.
  if (rebut > 0 && rebut >= support) return 'rebuts';
  if (support > 0) return 'supports';
  return 'neutral';
}
