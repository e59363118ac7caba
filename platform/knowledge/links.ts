/**
 * Links from the arena's structure. A message answers the one it names in
 * `replyTo`, else the previous message by another speaker (turn order). Its
 * items that take a stance (their own sentence's, or for its first item the
 * message's opening stance) link to the head item of the answered message:
 * `supports` or `rebuts`. Every item is `derived_from` its source and
 * `mentions` each entity it names. `supersedes` links come from dedup.
 */
import type { KnowledgeItem, Link, SourceMessage } from '../../shared/index.ts';

/** The item a reply is taken to answer: the message's first non-question item, else its first. */
export function headItem(items: readonly KnowledgeItem[]): KnowledgeItem | undefined {
  return items.find((i) => i.class !== 'question') ?? items[0];
}

/** The message `message` answers, and why: its `replyTo`, or the latest earlier message by someone else. */
export function answeredMessage(
  message: SourceMessage,
  earlier: readonly SourceMessage[],
): { message: SourceMessage; basis: 'reply-to' | 'turn-order' } | null {
  if (message.replyTo !== undefined) {
    const target = earlier.find((m) => m.id === message.replyTo);
    return target ? { message: target, basis: 'reply-to' } : null;
  }
  for (let i = earlier.length - 1; i >= 0; i--) if (earlier[i]!.speaker !== message.speaker) return { message: earlier[i]!, basis: 'turn-order' };
  return null;
}

export function structuralLinks(items: readonly KnowledgeItem[], sourceId: string): Link[] {
  const out: Link[] = [];
  for (const item of items) {
    out.push({ type: 'derived_from', from: { kind: 'item', id: item.id }, to: { kind: 'source', id: sourceId }, basis: 'source' });
    const keys = new Set(item.entities.map((e) => e.key));
    for (const key of keys) out.push({ type: 'mentions', from: { kind: 'item', id: item.id }, to: { kind: 'entity', id: key }, basis: 'entity' });
  }
  return out;
}

export function stanceLinks(replyItems: readonly KnowledgeItem[], target: KnowledgeItem, basis: 'reply-to' | 'turn-order'): Link[] {
  const out: Link[] = [];
  for (const item of replyItems) {
    if (item.stance === 'neutral') continue;
    out.push({ type: item.stance, from: { kind: 'item', id: item.id }, to: { kind: 'item', id: target.id }, basis });
  }
  return out;
}
