/**
 * Label and field selectors as the Kubernetes API parses them: `a=b`, `a==b`, `a!=b`,
 * `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated and all required. Field selectors
 * support `=`, `==` and `!=` on any dotted path of the object (`metadata.name`,
 * `involvedObject.name`, `status.phase`).
 */

/** One requirement of a selector. */
interface Requirement {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "!exists";
  values: string[];
}

/** A parsed selector: true for an object (or label map) that meets every requirement. */
export type Matcher = (value: (key: string) => string | undefined) => boolean;

/** Thrown for a selector that does not parse (the server answers 400). */
export class SelectorError extends Error {}

/** Splits on commas outside parentheses. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    if (char === ")") depth--;
    if (char === "," && depth === 0) {
      terms.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  terms.push(current);
  return terms.map((term) => term.trim()).filter((term) => term !== "");
}

/** Parses one term of a label selector. */
function parseLabelTerm(term: string): Requirement {
  let match = /^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (match) {
    const [, key = "", op, list = ""] = match;
    const values = list.split(",").map((value) => value.trim()).filter((v) => v !== "");
    return { key, op: op as "in" | "notin", values };
  }
  match = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$/.exec(term);
  if (match) {
    const [, key = "", op, value = ""] = match;
    return { key, op: op === "!=" ? "!=" : "=", values: [value] };
  }
  match = /^(!?)\s*([^\s!=()]+)$/.exec(term);
  if (match) {
    const [, not, key = ""] = match;
    return { key, op: not ? "!exists" : "exists", values: [] };
  }
  throw new SelectorError(`unable to parse requirement: "${term}"`);
}

/** Parses one term of a field selector. */
function parseFieldTerm(term: string): Requirement {
  const match = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
  if (!match) throw new SelectorError(`invalid selector: '${term}'; can't understand '${term}'`);
  const [, key = "", op, value = ""] = match;
  return { key, op: op === "!=" ? "!=" : "=", values: [value] };
}

/** Whether `value` meets `requirement`. */
function meets(requirement: Requirement, value: string | undefined): boolean {
  switch (requirement.op) {
    case "=":
      return value === requirement.values[0];
    case "!=":
      return value !== requirement.values[0];
    case "in":
      return value !== undefined && requirement.values.includes(value);
    case "notin":
      return value === undefined || !requirement.values.includes(value);
    case "exists":
      return value !== undefined;
    case "!exists":
      return value === undefined;
  }
}

/** Builds a matcher from requirements. */
function matcher(requirements: Requirement[]): Matcher {
  return (value) => requirements.every((requirement) => meets(requirement, value(requirement.key)));
}

/**
 * Parses a label selector (empty matches everything).
 * @throws {SelectorError} when it does not parse.
 */
export function parseLabelSelector(text: string | undefined): Matcher {
  return matcher(splitTerms(text ?? "").map(parseLabelTerm));
}

/**
 * Parses a field selector (empty matches everything).
 * @throws {SelectorError} when it does not parse.
 */
export function parseFieldSelector(text: string | undefined): Matcher {
  return matcher(splitTerms(text ?? "").map(parseFieldTerm));
}

/** The string at dotted `path` of `object` (numbers and booleans as text), or undefined. */
export function fieldValue(object: unknown, path: string): string | undefined {
  let current: unknown = object;
  for (const part of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  if (current === undefined || current === null) return undefined;
  return typeof current === "object" ? undefined : String(current);
}
