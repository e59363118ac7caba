/**
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): each
 * list votes 1 / (k + rank) for its items (rank from 1), weighted; items are
 * ordered by their summed votes. Only ranks count, never raw scores, so a
 * cosine distance and a BM25 score can be fused without calibrating one
 * against the other.
 *
 * Ties are broken by the best rank an item had in any list, then by its
 * position in the first list that had it, so the order is deterministic.
 */

export interface FusedItem<T> {
  item: T;
  score: number;
  /** The item's 1-based rank in each input list, or null where it was absent. */
  ranks: (number | null)[];
}

export function reciprocalRankFusion<T>(lists: readonly { items: readonly T[]; weight?: number }[], key: (item: T) => string, k = 60): FusedItem<T>[] {
  const fused = new Map<string, FusedItem<T> & { best: number; first: number }>();
  lists.forEach((list, li) => {
    const weight = list.weight ?? 1;
    list.items.forEach((item, i) => {
      const id = key(item);
      let f = fused.get(id);
      if (!f) {
        f = { item, score: 0, ranks: lists.map(() => null), best: Infinity, first: li * 1e9 + i };
        fused.set(id, f);
      }
      // A list that repeats an item votes once, with its best rank.
      if (f.ranks[li] !== null) return;
      f.ranks[li] = i + 1;
      f.score += weight / (k + i + 1);
      f.best = Math.min(f.best, i + 1);
    });
  });
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.best - b.best || a.first - b.first)
    .map(({ item, score, ranks }) => ({ item, score, ranks }));
}
