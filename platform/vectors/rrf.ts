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

type Lists<T> = readonly { items: readonly T[]; weight?: number }[];

/**
 * The fusion both methods share: each list adds `weight × vote(list, position)` for each of its items
 * (a list that repeats an item votes once, at its first position); items are ordered by their sums.
 */
function weightedFusion<T>(lists: Lists<T>, key: (item: T) => string, voteOf: (list: number) => (position: number) => number): FusedItem<T>[] {
  const fused = new Map<string, FusedItem<T> & { best: number; first: number }>();
  lists.forEach((list, li) => {
    const weight = list.weight ?? 1;
    const vote = voteOf(li);
    list.items.forEach((item, i) => {
      const id = key(item);
      let f = fused.get(id);
      if (!f) {
        f = { item, score: 0, ranks: lists.map(() => null), best: Infinity, first: li * 1e9 + i };
        fused.set(id, f);
      }
      if (f.ranks[li] !== null) return;
      f.ranks[li] = i + 1;
      f.score += weight * vote(i);
      f.best = Math.min(f.best, i + 1);
    });
  });
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.best - b.best || a.first - b.first)
    .map(({ item, score, ranks }) => ({ item, score, ranks }));
}

export function reciprocalRankFusion<T>(lists: Lists<T>, key: (item: T) => string, k = 60): FusedItem<T>[] {
  return weightedFusion(lists, key, () => (i) => 1 / (k + i + 1));
}

/**
 * Convex combination of min-max normalised scores (the fusion Bruch, Gai and
 * Ingber compare with RRF in "An Analysis of Fusion Functions for Hybrid
 * Retrieval", TOIS 2023): each list's scores are mapped to [0, 1] over its own
 * candidates (all equal: 1), an item absent from a list counts 0 there, and
 * items are ordered by the weighted sum. Unlike RRF it keeps how far apart
 * two candidates were, not only their order, so a list that is sure of its
 * first hit can carry it; the price is that each list's scores must grow
 * with relevance (a similarity, BM25), which `score` must return.
 *
 * Ties as in `reciprocalRankFusion`; `ranks` the same.
 */
export function minMaxFusion<T>(lists: Lists<T>, key: (item: T) => string, score: (item: T, list: number) => number): FusedItem<T>[] {
  return weightedFusion(lists, key, (li) => {
    const scores = lists[li]!.items.map((item) => score(item, li));
    const hi = Math.max(...scores);
    const lo = Math.min(...scores);
    return (i) => (hi > lo ? (scores[i]! - lo) / (hi - lo) : 1);
  });
}
