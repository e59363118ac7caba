/**
 * Token text that carries its own send time: 6 characters (inside the 3-6
 * of real model tokens), base64url of microseconds since a run's epoch,
 * most significant first. 64^6 µs is about 19 hours.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

export const STAMP_WIDTH = 6;

export function encodeStamp(us: number): string {
  let rest = Math.round(us);
  let s = '';
  for (let i = 0; i < STAMP_WIDTH; i++) {
    s = ALPHABET[rest & 63]! + s;
    rest = Math.floor(rest / 64);
  }
  return s;
}

export function decodeStamp(s: string): number {
  let us = 0;
  for (const c of s) us = us * 64 + DECODE.get(c)!;
  return us;
}

/** The stamps in a text event, which may carry several tokens back to back (a batched entry). */
export function stampsIn(text: string): number[] {
  const out: number[] = [];
  for (let k = 0; k + STAMP_WIDTH <= text.length; k += STAMP_WIDTH) out.push(decodeStamp(text.slice(k, k + STAMP_WIDTH)));
  return out;
}
