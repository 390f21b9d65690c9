/**
 * The code blocks of the READMEs (README.md and examples/<name>/README.md), read as the tests run
 * them. A block is run unless the last non-blank line before its fence is
 * `<!-- not run: the reason -->` (invisible when rendered).
 */
import { fileURLToPath } from "node:url";
import { join, relative } from "node:path";

/** The checkout's root directory. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** One fenced code block of a README. */
export interface Snippet {
  /** The README, relative to the checkout (`README.md`, `examples/agents/README.md`). */
  file: string;
  /** 1-based line of the block's first code line in the file. */
  line: number;
  /** The fence's language (`sh`, `ts`, ...). */
  lang: string;
  /** The nearest `#` heading above the block. */
  heading: string;
  /** The code, without the fences, ending with a newline. */
  text: string;
  /** Why the block is not run (`<!-- not run: reason -->` before it; "" when no reason). */
  skip?: string;
}

/** What the SDK quickstart prints (its comments promise these values). */
export const QUICKSTART_OUTPUT = "hello from /tmp 0\n7\nUint8Array(3) [ 0, 1, 255 ]\n3 []\n";

/** Whether `snippet` is the README's SDK quickstart (the ts block under "SDK quickstart"). */
export function isQuickstart(snippet: Snippet): boolean {
  return snippet.lang === "ts" && /quickstart/i.test(snippet.heading);
}

/** The fenced blocks of one markdown text, in order. */
export function parseSnippets(file: string, markdown: string): Snippet[] {
  const lines = markdown.split("\n");
  const snippets: Snippet[] = [];
  let heading = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined) break;
    const fence = /^```(\S*)\s*$/.exec(line);
    if (!fence) {
      if (/^#+ /.test(line)) heading = line;
      continue;
    }
    const end = lines.findIndex((line, j) => j > i && /^```\s*$/.test(line));
    if (end < 0) throw new Error(`${file}:${i + 1}: code block without a closing fence`);
    // deno fmt puts a blank line between an HTML comment and the fence that follows it.
    let before = i - 1;
    while (before >= 0 && lines[before]?.trim() === "") before--;
    const marker = /^<!--\s*not run\b:?\s*(.*?)\s*-->\s*$/.exec(lines[before] ?? "");
    snippets.push({
      file,
      line: i + 2,
      lang: fence[1] ?? "",
      heading,
      text: lines.slice(i + 1, end).join("\n") + "\n",
      ...(marker ? { skip: marker[1] } : {}),
    });
    i = end;
  }
  return snippets;
}

/** Every block of README.md and examples/<name>/README.md, README.md first. */
export async function readmeSnippets(): Promise<Snippet[]> {
  const files = [join(REPO_ROOT, "README.md")];
  const examples = join(REPO_ROOT, "examples");
  const names = [];
  for await (const entry of Deno.readDir(examples)) if (entry.isDirectory) names.push(entry.name);
  for (const name of names.sort()) {
    const path = join(examples, name, "README.md");
    if (await Deno.stat(path).then((s) => s.isFile, () => false)) files.push(path);
  }
  const snippets = [];
  for (const path of files) {
    snippets.push(...parseSnippets(relative(REPO_ROOT, path), await Deno.readTextFile(path)));
  }
  return snippets;
}

/**
 * Runs a TypeScript block as the README says (saved in the checkout, `deno run -A`) and returns
 * what it printed.
 * @throws {Error} with its stderr when it exits non-zero.
 */
export async function runTsSnippet(
  snippet: Snippet,
  env: Record<string, string>,
): Promise<string> {
  const path = join(REPO_ROOT, `readme-snippet-${crypto.randomUUID()}.ts`);
  await Deno.writeTextFile(path, snippet.text);
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", path],
      cwd: REPO_ROOT,
      env,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(300_000),
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    if (output.code !== 0) {
      throw new Error(
        `${snippet.file}:${snippet.line} exited with ${output.code}: ${decode(output.stderr)}`,
      );
    }
    return decode(output.stdout);
  } finally {
    await Deno.remove(path);
  }
}
