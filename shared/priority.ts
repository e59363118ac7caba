import { z } from 'zod';

/**
 * Priority classes a client may ask for. `interactive` is for a person
 * waiting on the answer, `batch` for bulk work that may wait.
 */
export const PriorityClass = z.enum(['interactive', 'normal', 'batch']);
export type PriorityClass = z.infer<typeof PriorityClass>;
