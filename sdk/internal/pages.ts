/** Cursor pagination as an async iterator: `for await (const job of client.jobs.list())` walks every page. */

export interface Paginated<T, P extends { items: T[]; nextCursor: string | null }> extends AsyncIterable<T> {
  /** The pages themselves, one request each. */
  pages(): AsyncIterable<P>;
  /** Just the first page. */
  first(): Promise<P>;
}

export function paginate<T, P extends { items: T[]; nextCursor: string | null }>(fetchPage: (cursor: string | undefined) => Promise<P>): Paginated<T, P> {
  async function* pages(): AsyncGenerator<P> {
    let cursor: string | undefined;
    do {
      const page = await fetchPage(cursor);
      yield page;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
  return {
    pages,
    first: () => fetchPage(undefined),
    async *[Symbol.asyncIterator]() {
      for await (const page of pages()) yield* page.items;
    },
  };
}
