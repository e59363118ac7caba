import { z } from 'zod';

/**
 * Token usage of a job. `estimated` is true when Ollama reported no counts
 * (a cancelled or failed stream): output tokens were then counted from the
 * stream's chunks and prompt tokens estimated from the prompt's length.
 */
export const Usage = z.object({
  model: z.string().optional(),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  estimated: z.boolean(),
});
export type Usage = z.infer<typeof Usage>;
