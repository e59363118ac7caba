import { debates } from '../bench/memory/generate.ts';
import { extractSource } from '../platform/knowledge/index.ts';
const ds = debates('dev', 40, 1);
for (const d of ds) {
  const q = d.questions.find((q) => q.kind === 'knowledge-update' && q.question.includes('Chen') && q.question.includes('coffee'));
  if (!q) continue;
  const r = extractSource(
    { kind: 'conversation', title: d.id, messages: d.turns.map((t) => ({ id: t.id, speaker: t.speaker, text: t.text, at: t.at })) },
    { sourceId: d.id, scope: { scope: 'room', owner: 'u', room: d.id }, recordedAt: '2026-01-01T00:00:00.000Z' },
  );
  console.log(q);
  for (const i of r.items.filter((i) => i.speaker?.startsWith('Chen') || i.text.includes('coffee')))
    console.log(i.id.slice(-12), i.provenance.messageIds.join(','), i.speaker, JSON.stringify(i.text), 'sup', i.supersededAt);
  console.log(r.links.filter((l) => l.type === 'supersedes').map((l) => `${l.from.id.slice(-12)} -> ${l.to.id.slice(-12)}`));
  console.log(d.turns.filter((t) => t.text.includes('coffee')).map((t) => `${t.id} ${t.speaker}: ${t.text}`));
  break;
}
