import { debates } from '../bench/memory/generate.ts';
import { extractSource } from '../platform/knowledge/index.ts';
const ds = debates('dev', 40, 1);
let miss = 0;
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
    if (!r.links.some((l) => l.type === 'supersedes' && from.has(l.from.id) && to.has(l.to.id))) {
      if (miss++ < 12) {
        const links = r.links.filter((l) => l.type === 'supersedes' && (from.has(l.from.id) || to.has(l.to.id)));
        console.log(
          q.question,
          '|',
          itemOf(n!)
            .map((i) => i.text + ' [' + i.speaker + ']')
            .join(' / '),
          '||',
          itemOf(p!)
            .map((i) => i.text + ' [' + i.speaker + '] superseded=' + i.supersededAt)
            .join(' / '),
          '|| links',
          JSON.stringify(links.map((l) => [l.from.id.slice(0, 6), l.to.id.slice(0, 6)])),
        );
      }
    }
  }
}
console.log('miss', miss);
