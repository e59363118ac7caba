/**
 * The vector store on a real LanceDB folder: the analyzer, rank fusion, and
 * the vector table's contract (tests/vectors/table-suite.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeText, openVectorStore, reciprocalRankFusion, splitIdentifier } from '../../platform/vectors/index.ts';
import { vectorTableSuite } from './table-suite.ts';

vectorTableSuite('a local folder', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-vectors-'));
  const store = await openVectorStore({ uri: dir, maintenance: { versionRetentionMs: 0 } });
  return {
    store,
    close: async () => {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('analyzer', () => {
  it('splits identifiers on camelCase, acronyms, snake_case and digits', () => {
    expect(splitIdentifier('parseHTTPResponse2')).toEqual(['parse', 'http', 'response', '2']);
    expect(splitIdentifier('snake_case_name')).toEqual(['snake', 'case', 'name']);
    expect(splitIdentifier('$scope')).toEqual(['scope']);
    expect(analyzeText('def get_user_id(self):')).toBe('def getuserid get user id getuser userid self');
    // Sub-identifiers: a query naming `inRange` meets `baseInRange`.
    expect(analyzeText('baseInRange').split(' ')).toEqual(['baseinrange', 'base', 'in', 'range', 'basein', 'inrange']);
  });

  it('gives the same token for an identifier in any casing convention', () => {
    const whole = (s: string) => analyzeText(s).split(' ')[0];
    expect(whole('parse_http_response')).toBe(whole('parseHttpResponse'));
    expect(whole('ParseHTTPResponse')).toBe(whole('parseHttpResponse'));
  });
});

describe('reciprocal rank fusion', () => {
  it('ranks an item found by both lists above items found by one', () => {
    const fused = reciprocalRankFusion([{ items: ['a', 'b', 'c'] }, { items: ['d', 'c', 'e'] }], (x) => x);
    expect(fused[0]!.item).toBe('c');
    expect(fused[0]!.ranks).toEqual([3, 2]);
    expect(fused.map((f) => f.item).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});
