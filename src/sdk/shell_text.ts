/**
 * Text helpers for commands the SDK sends into a sandbox: POSIX shell quoting and ROCK's
 * command templates (`deploy.format`: `${key}`, `$key` and `<<key>>` for known keys only).
 */

/** Quotes `text` as one shell word (as Python's `shlex.quote`). */
export function shellQuote(text: string): string {
  if (text !== "" && /^[\w@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

// Python's string.Template pattern (flags re.IGNORECASE): `$$`, `$name`, `${name}`.
const PLACEHOLDER = /\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)\})/gi;

/**
 * Fills a command template the way ROCK's `Deploy.format` does: `<<key>>` becomes `${key}` for
 * known keys only (so `$((3 << 2 >> 1))` is left alone), then Python's `Template.safe_substitute`
 * replaces `${key}` and `$key` of known keys, turns `$$` into `$` and leaves everything else.
 * Keys whose value is undefined are unknown.
 */
export function formatTemplate(
  template: string,
  values: Record<string, string | undefined>,
): string {
  const known = new Map(
    Object.entries(values).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  let text = template;
  for (const key of known.keys()) text = text.replaceAll(`<<${key}>>`, `\${${key}}`);
  return text.replace(PLACEHOLDER, (match, dollar, named, braced) => {
    if (dollar) return "$";
    const value = known.get(named ?? braced);
    return value ?? match;
  });
}
