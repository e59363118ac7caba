import { debates } from '../bench/memory/generate.ts';
import { extractSource } from '../platform/knowledge/index.ts';
const ds = debates('dev', 40, 1);
let shown = 0;
for (const d of ds) {
  const r = extractSource(
    { kind: 'conversation', title: d.id, messages: d.turns.map((t) => ({ id: t.id, speaker: t.speaker, text: t.text, at: t.at })) },
    { sourceId: d.id, scope: { scope: 'room', owner: 'u', room: d.id }, recordedAt: '2026-01-01T00:00:00.000Z' },
  );
  const itemOf = (id: string) => r.items.filter((i) => i.provenance.messageIds.includes(id));
  for (const q of d.questions.filter((q) => q.kind === 'knowledge-update')) {
    const [n, p] = q.evidence;
    const from = new Set(itemOf(n!).map((i) => i.id)),
      to = new Set(itemOf(p!).map((i) => i.id));
    if (r.links.some((l) => l.type === 'supersedes' && from.has(l.from.id) && to.has(l.to.id))) continue;
    if (shown++ > 1) break;
    console.log(q);
    const who = q.question.split(' ')[2]!.replace("'s", '');
    for (const i of r.items.filter((i) => i.speaker === who))
      console.log(i.id.slice(-12), i.speaker, JSON.stringify(i.text), 'sup', i.supersededAt ? 'Y' : '-');
    console.log(
      r.links
        .filter((l) => l.type === 'supersedes' && (from.has(l.from.id) || to.has(l.to.id) || from.has(l.to.id)))
        .map((l) => `${l.from.id.slice(-12)} -> ${l.to.id.slice(-12)}`),
    );
  }
}
