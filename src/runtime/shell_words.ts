/** Quoting for the bash text the runtime writes itself. */

/** Quotes `text` for bash in single quotes. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
