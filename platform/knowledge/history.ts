/**
 * What a believed item replaced: the chain of values it superseded, newest
 * first, followed through `supersedes` links (Postgres) and read back through
 * the caller's scoped repository, so only what the caller may see comes back
 * and a forgotten or expired item is never returned. "What is Ada's coffee
 * now?" is answered by the hit; "and before?" and "why do you believe it
 * changed?" by its history, each entry with its own provenance.
 */
import type { KnowledgeItem } from '../../shared/index.ts';
import type { KnowledgeRepository } from './lance-index.ts';
import type { KnowledgeRecords } from './records.ts';

/** How many earlier values a hit carries at most. */
export const historyDepth = 3;

/** For each item id given, the items it superseded, newest first, up to `depth` steps back. */
export async function supersededChains(
  deps: { records: Pick<KnowledgeRecords, 'itemLinksOf'>; repo: Pick<KnowledgeRepository, 'get'> },
  owner: string,
  scopes: readonly string[],
  itemIds: readonly string[],
  depth = historyDepth,
): Promise<Map<string, KnowledgeItem[]>> {
  const chains = new Map<string, string[]>(itemIds.map((id) => [id, []]));
  // The head of each chain as it grows: one query per step for all the chains together.
  let frontier = new Map<string, string>(itemIds.map((id) => [id, id]));
  for (let step = 0; step < depth && frontier.size; step++) {
    const links = await deps.records.itemLinksOf(owner, [...frontier.keys()], ['supersedes']);
    const next = new Map<string, string>();
    for (const l of links) {
      const root = frontier.get(l.from.id);
      if (root === undefined) continue;
      const chain = chains.get(root)!;
      // One predecessor per step (an update supersedes one item); a cycle would be a bug, not a history.
      if (chain.length > step || chain.includes(l.to.id) || l.to.id === root) continue;
      chain.push(l.to.id);
      next.set(l.to.id, root);
    }
    frontier = next;
  }
  const wanted = [...new Set([...chains.values()].flat())];
  const items = new Map((await deps.repo.get(scopes, wanted)).map((i) => [i.id, i]));
  return new Map([...chains].map(([id, chain]) => [id, chain.map((c) => items.get(c)).filter((i): i is KnowledgeItem => i !== undefined)]));
}
