/**
 * Ollama model names: the grammar Ollama 0.11 accepts, and the one canonical
 * form the platform compares names in.
 *
 * A name is `[[host/]namespace/]model[:tag]`. Ollama fills what is missing
 * from its defaults (its public registry host, namespace `library`, tag
 * `latest`), so `x`, `x:latest`, `library/x:latest` and the same with the
 * default host in front all name one model, and it looks names up without
 * regard to case. Every part starts with a letter, digit or `_`; a host may
 * hold `.`, `:` (a port) and `-`; a namespace no `.`; model and tag `.` `-`
 * `_`. Anything else (`..`, an empty tag as in `x:`, `../../etc/passwd`, a
 * scheme, a digest) is refused at the edge with a 400: Ollama would answer
 * 500 "invalid model path" for most of them.
 */
import { z } from 'zod';

/** Ollama's defaults for the parts a name leaves out. */
export const defaultRegistryHost = 'registry.ollama.ai';
const defaultNamespace = 'library';
const defaultTag = 'latest';

// host requires a namespace: "a/b" is namespace a, model b (as Ollama parses it).
const part = '[A-Za-z0-9_]';
const namePattern = new RegExp(
  `^(?:(?:(${part}[A-Za-z0-9_.:-]{0,199})/)?(${part}[A-Za-z0-9_-]{0,79})/)?(${part}[A-Za-z0-9_.-]{0,79})(?::(${part}[A-Za-z0-9_.-]{0,79}))?$`,
);

/**
 * An Ollama model name. In a URL path it must be percent-encoded
 * (`library%2Fllama3%3A8b`), since it may hold `/`.
 */
export const ModelName = z
  .string()
  .min(1)
  .max(200)
  .regex(
    namePattern,
    'an Ollama model name: [[host/]namespace/]model[:tag], each part starting with a letter, digit or _ (model and tag may hold . - _, a host also : for its port)',
  );
export type ModelName = z.infer<typeof ModelName>;

export interface ParsedModelName {
  /** Lower case; `registry.ollama.ai` when the name gives none. */
  host: string;
  namespace: string;
  model: string;
  tag: string;
  /** The name named a host of its own (not the default registry written out). */
  explicitHost: boolean;
}

/** The parts of a name with Ollama's defaults filled in, or `undefined` when it is not a valid name. */
export function parseModelName(name: string): ParsedModelName | undefined {
  if (name.length > 200) return undefined;
  const m = namePattern.exec(name);
  if (!m) return undefined;
  const [, host, namespace, model, tag] = m;
  const h = (host ?? defaultRegistryHost).toLowerCase();
  return { host: h, namespace: namespace ?? defaultNamespace, model: model!, tag: tag ?? defaultTag, explicitHost: h !== defaultRegistryHost };
}

/**
 * The one canonical form of a model name, in which names are compared
 * (allow-lists, installed lists, usage rows, metric labels): Ollama's
 * shortest display form (`/api/tags` names) in lower case. The default host
 * and namespace are dropped and the tag is always there:
 * `registry.ollama.ai/library/X` → `x:latest`, `Team/X:1` → `team/x:1`.
 * A string that is not a valid name is returned unchanged: it never equals
 * the canonical form of a valid name, since every canonical form is valid.
 */
export function canonicalModelName(name: string): string {
  const p = parseModelName(name);
  if (!p) return name;
  const prefix = p.explicitHost ? `${p.host}/${p.namespace}/` : p.namespace.toLowerCase() !== defaultNamespace ? `${p.namespace}/` : '';
  return `${prefix}${p.model}:${p.tag}`.toLowerCase();
}
