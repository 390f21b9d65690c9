/** Reading what `kubectl get --watch -o json` prints: JSON objects back to back. */

/**
 * Splits a stream of JSON objects printed back to back (pretty or compact, as kubectl prints
 * them) into whole objects: counts braces outside strings.
 */
export function jsonObjects(text: string): { objects: unknown[]; rest: string } {
  const objects: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  let consumed = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (char === "\\") escaped = true;
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === "{") {
      if (depth++ === 0) start = i;
    } else if (char === "}" && --depth === 0) {
      objects.push(JSON.parse(text.slice(start, i + 1)));
      consumed = i + 1;
    }
  }
  return { objects, rest: text.slice(consumed) };
}
