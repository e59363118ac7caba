/**
 * The code-aware analyzer behind the full-text index: what goes into a
 * table's `search_text` column, and what a text query is turned into before
 * it meets the index.
 *
 * LanceDB's tokenizers split on whitespace and punctuation only, so
 * `parseHTTPResponse` would be one token that no query word matches. Here
 * every identifier is kept whole (lower-cased, separators dropped, so
 * `parse_http_response`, `parseHttpResponse` and `ParseHTTPResponse` are the
 * same token) and also split into its words on snake_case, kebab-case,
 * camelCase, acronym and digit boundaries:
 *
 *   parseHTTPResponse2 → parsehttpresponse2 parse http response 2
 *
 * The same function analyzes documents and queries, so both sides agree.
 */

const word = /[\p{L}\p{N}_$]+/gu;
const camel = /\p{Lu}+(?!\p{Ll})|\p{Lu}?\p{Ll}+|\p{N}+|\p{Lo}+/gu;

/** The words of one identifier, lower-cased: `getHTTP2Url` → get, http, 2, url. */
export function splitIdentifier(identifier: string): string[] {
  const out: string[] = [];
  for (const segment of identifier.split(/[_$]+/)) {
    for (const m of segment.matchAll(camel)) out.push(m[0].toLowerCase());
  }
  return out;
}

/** Parts beyond this many are not joined into sub-identifiers (their count grows quadratically). */
const maxJoinedParts = 6;

/** Space-separated tokens for the full-text index (see the file comment). */
export function analyzeText(text: string): string {
  const out: string[] = [];
  for (const m of text.matchAll(word)) {
    const parts = splitIdentifier(m[0]);
    if (parts.length === 0) continue;
    out.push(parts.join(''));
    if (parts.length === 1) continue;
    out.push(...parts);
    // Sub-identifiers: `baseInRange` also yields `basein` and `inrange`, so a query naming `inRange`
    // meets the helper built on it, and `base … inRange` meets it best.
    const n = Math.min(parts.length, maxJoinedParts);
    for (let len = 2; len < n; len++) for (let i = 0; i + len <= n; i++) out.push(parts.slice(i, i + len).join(''));
  }
  return out.join(' ');
}
