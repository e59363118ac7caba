import { z } from 'zod';

/**
 * Ollama generation options, in Ollama's own names, with the ranges its
 * runner accepts. Unknown keys are rejected so a typo is a 400, not a silently
 * ignored knob.
 */
export const OllamaOptions = z
  .object({
    temperature: z.number().min(0).max(2),
    top_p: z.number().min(0).max(1),
    top_k: z.number().int().min(0).max(1000),
    min_p: z.number().min(0).max(1),
    typical_p: z.number().min(0).max(1),
    /**
     * Tokens to generate. Always bounded: the platform fills in a default when absent, and a role's cap bounds both.
     * Ollama 0.11 reads a negative value as 10 × num_ctx and 0 as "no limit", so neither is accepted.
     */
    num_predict: z.number().int().min(1).max(32_768),
    num_ctx: z.number().int().min(128).max(131_072),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    stop: z.array(z.string().min(1).max(64)).max(8),
    /** llama.cpp divides positive logits by it: 0 would divide by zero, so it must be positive. 1 disables it. */
    repeat_penalty: z.number().positive().max(4),
    repeat_last_n: z.number().int().min(-1).max(4096),
    presence_penalty: z.number().min(-2).max(2),
    frequency_penalty: z.number().min(-2).max(2),
  })
  .partial()
  .strict();
export type OllamaOptions = z.infer<typeof OllamaOptions>;

/** `format`: "json", or a JSON schema the output must follow. */
export const OllamaFormat = z.union([z.literal('json'), z.record(z.string(), z.unknown())]);
export type OllamaFormat = z.infer<typeof OllamaFormat>;

/**
 * `keep_alive`: a Go duration string such as "5m", "30s" or "1h30m", or a number of seconds; 0 unloads after the
 * request, a negative value keeps the model loaded forever. Ollama parses strings with Go's time.ParseDuration,
 * which refuses a number without a unit ("300" is an error upstream; send 300), except "0".
 */
export const KeepAlive = z.union([
  z.string().regex(/^(0|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$/, 'a duration with a unit, e.g. "30s", "5m", "1h30m"'),
  z.number().int().min(-1).max(86_400),
]);
export type KeepAlive = z.infer<typeof KeepAlive>;

const durationUnits: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/**
 * How long a `keep_alive` keeps the model loaded, in seconds, as Ollama reads
 * it: a negative value (number or duration) is forever (`Infinity`), 0 unloads
 * at once. Role caps compare it with their bound.
 */
export function keepAliveSeconds(k: KeepAlive): number {
  if (typeof k === 'number') return k < 0 ? Infinity : k;
  if (k.startsWith('-')) return Infinity;
  let total = 0;
  for (const m of k.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * durationUnits[m[2]!]!;
  return total;
}

export const ChatMessage = z
  .object({
    role: z.enum(['system', 'user', 'assistant']),
    content: z.string().max(200_000),
  })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessage>;
