/**
 * A rough token estimate for text Ollama has not counted (a cancelled
 * prompt): about four characters per token for English with BPE vocabularies.
 * Usage built from it is always marked `estimated`.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
