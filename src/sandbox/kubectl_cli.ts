/**
 * The one wrapper around kubectl, as docker_cli.ts is for docker. Every call goes through dax
 * with `.noThrow()`, stdout and stderr captured, a timeout and an optional AbortSignal, and its
 * arguments passed as an array through dax's escaping. Objects go in as JSON on stdin (`-f -`)
 * and come out as JSON (`-o json`). A failure becomes a KubectlError naming the kubectl command,
 * the exit code and the tail of stderr, typed by the API's Status reason kubectl prints in
 * parentheses (`Error from server (NotFound): ...`). Long-lived kubectl processes (a watch, a
 * proxy) are spawned directly so they can always be killed. Every process started is counted.
 */
import $ from "dax";
import { CancelledError, RockError, UnavailableError } from "../common/errors.ts";
import { daxArgs, tail } from "./docker_cli.ts";
import { JsonObjectSplitter } from "./json_stream.ts";
import { binaryExists, callKill, colon, followChild } from "./tool_process.ts";

/** Where kubectl points and how long a call may take. */
export interface KubectlOptions {
  /** The kubectl executable (default "kubectl", found on PATH). */
  binary?: string | undefined;
  /** A kubeconfig file (default: kubectl's own, KUBECONFIG or ~/.kube/config). */
  kubeconfig?: string | undefined;
  /** A context of the kubeconfig (default: its current context). */
  context?: string | undefined;
  /** The namespace of every namespaced call (default: the context's). */
  namespace?: string | undefined;
  /** Timeout of one call in milliseconds (default 60 000). */
  timeoutMs?: number | undefined;
  /** Environment set for every kubectl run (on top of the process's). */
  env?: Record<string, string> | undefined;
}

/** Options of one kubectl call. */
export interface KubectlCallOptions {
  /** Timeout of this call in milliseconds (default: the wrapper's). */
  timeoutMs?: number;
  /** Aborts the call: kubectl gets SIGKILL and the call throws a CancelledError. */
  signal?: AbortSignal | undefined;
  /** Text fed to kubectl's stdin (a manifest for `-f -`). */
  stdin?: string;
}

/** What a kubectl run printed and how it exited. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The fields of a Kubernetes object rock reads everywhere. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** One event of a watch (`--output-watch-events`). */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject;
}

/** A kubectl call failed; `reason` is the API's Status reason when kubectl printed one. */
export class KubectlError extends RockError {
  /** The Status reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...), or "". */
  readonly reason: string;

  /** Creates the error. */
  constructor(message: string, options: ConstructorParameters<typeof RockError>[1] = {}) {
    super(message, options);
    this.reason = String(options.extraInfo?.reason ?? "");
  }
}

/** The object does not exist (Status reason NotFound). */
export class KubectlNotFoundError extends KubectlError {}
/** An object of that name exists already (Status reason AlreadyExists). */
export class KubectlAlreadyExistsError extends KubectlError {}
/** A precondition (resourceVersion) failed: the object changed meanwhile (reason Conflict). */
export class KubectlConflictError extends KubectlError {}

const DEFAULT_TIMEOUT_MS = 60_000;
/** The Status reason kubectl prints: `Error from server (NotFound): pods "x" not found`. */
const SERVER_REASON = /Error from server \((\w+)\)/;
/** Flags of kubectl that take a value (left out of a command's name). */
const GLOBAL_FLAGS = new Set(["--kubeconfig", "--context", "--namespace", "-n", "-o", "-l", "-f"]);

/** A typed client for kubectl. */
export class KubectlCli {
  readonly #binary: string;
  readonly #global: string[];
  readonly #timeoutMs: number;
  readonly #env: Record<string, string>;
  readonly #namespace?: string | undefined;
  #spawned = 0;

  /** Creates a client; nothing runs until the first call. */
  constructor(options: KubectlOptions = {}) {
    this.#binary = options.binary ?? "kubectl";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#env = options.env ?? {};
    this.#namespace = options.namespace;
    const global: string[] = [];
    if (options.kubeconfig) global.push("--kubeconfig", options.kubeconfig);
    if (options.context) global.push("--context", options.context);
    if (options.namespace) global.push("--namespace", options.namespace);
    this.#global = global;
  }

  /** The binary this client runs. */
  get binary(): string {
    return this.#binary;
  }

  /** How many kubectl processes this client has started so far. */
  get spawned(): number {
    return this.#spawned;
  }

  /**
   * The namespace calls go to: the configured one, else the context's (`kubectl config view
   * --minify`), else "default".
   */
  async namespace(options: KubectlCallOptions = {}): Promise<string> {
    if (this.#namespace) return this.#namespace;
    const out = await this.exec(
      ["config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}"],
      options,
    );
    return out.trim() || "default";
  }

  /**
   * Runs `kubectl <global flags> <args>` and returns its output whatever the exit code.
   * @throws {CancelledError} when `options.signal` aborts the call (kubectl gets SIGKILL).
   * @throws {RockError} when kubectl cannot be started or runs past the timeout.
   * @throws {UnavailableError} when kubectl is not found on PATH.
   */
  async call(args: string[], options: KubectlCallOptions = {}): Promise<KubectlResult> {
    const name = commandName(args);
    const { signal, stdin } = options;
    if (signal?.aborted) throw new CancelledError(`Cannot run "${name}": cancelled before start`);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const kill = callKill(timeoutMs, signal);
    try {
      let command = $`${this.#binary} ${daxArgs([...this.#global, ...args])}`
        .signal(kill.signal)
        .env(this.#env)
        .stdout("piped")
        .stderr("piped")
        .noThrow();
      command = stdin === undefined ? command.stdin("null") : command.stdinText(stdin);
      this.#spawned++;
      const result = await command;
      if (signal?.aborted) {
        throw new CancelledError(`Cannot run "${name}": cancelled${colon(tail(result.stderr))}`);
      }
      if (kill.timedOut) {
        throw new RockError(
          `Cannot run "${name}": timed out after ${timeoutMs} ms${colon(tail(result.stderr))}`,
          { extraInfo: { command: name, stderr: tail(result.stderr) } },
        );
      }
      if (result.code === 127 && !(await binaryExists(this.#binary))) {
        throw new UnavailableError(`Cannot run "${name}": "${this.#binary}" not found on PATH`);
      }
      return { code: result.code, stdout: result.stdout, stderr: result.stderr };
    } finally {
      kill.done();
    }
  }

  /**
   * Runs `kubectl <args>` and returns its stdout.
   * @throws {KubectlError} (typed by the API's reason) or UnavailableError on failure.
   */
  async exec(args: string[], options: KubectlCallOptions = {}): Promise<string> {
    const result = await this.call(args, options);
    if (result.code === 0) return result.stdout;
    // No Status from the server: ask it something trivial to tell "unreachable" from the rest.
    const answered = statusReason(result.stderr) !== "" ||
      (await this.call(["get", "--raw", "/version", "--request-timeout=5s"], {
          signal: options.signal,
        }).catch(() => undefined))?.code === 0;
    throw kubectlFailure(args, result, answered);
  }

  /** Runs `kubectl <args> -o json` and parses what it prints. */
  async json<T>(args: string[], options: KubectlCallOptions = {}): Promise<T> {
    const out = await this.exec([...args, "-o", "json"], options);
    try {
      return JSON.parse(out) as T;
    } catch {
      throw new RockError(
        `Cannot read the output of "${commandName(args)}": not JSON: ${out.slice(0, 200)}`,
      );
    }
  }

  /**
   * Creates `object` (`kubectl create -f -`) and returns it as the API stored it.
   * @throws {KubectlAlreadyExistsError} when an object of its name exists.
   */
  create<T extends KubeObject>(object: T, options: KubectlCallOptions = {}): Promise<T> {
    return this.json<T>(["create", "-f", "-"], { ...options, stdin: JSON.stringify(object) });
  }

  /** The object `kind/name`, or undefined when it does not exist (`--ignore-not-found`). */
  async get<T extends KubeObject>(
    kind: string,
    name: string,
    options: KubectlCallOptions = {},
  ): Promise<T | undefined> {
    const out = await this.exec(
      ["get", kind, name, "--ignore-not-found", "-o", "json"],
      options,
    );
    return out.trim() === "" ? undefined : JSON.parse(out) as T;
  }

  /** The objects of `kind` matching label selector `selector`. */
  async list<T extends KubeObject>(
    kind: string,
    selector: string,
    options: KubectlCallOptions = {},
  ): Promise<T[]> {
    return (await this.json<{ items: T[] }>(["get", kind, "-l", selector], options)).items;
  }

  /**
   * Deletes `kind/name` without waiting for it to be gone; quiet when it does not exist.
   * `gracePeriodSeconds` overrides the object's own.
   */
  async delete(
    kind: string,
    name: string,
    options: KubectlCallOptions & { gracePeriodSeconds?: number } = {},
  ): Promise<void> {
    const args = ["delete", kind, name, "--ignore-not-found", "--wait=false"];
    if (options.gracePeriodSeconds !== undefined) {
      args.push(`--grace-period=${options.gracePeriodSeconds}`);
    }
    await this.exec(args, options);
  }

  /**
   * Patches `kind/name` with a JSON patch (RFC 6902). Put a `test` op on
   * `/metadata/resourceVersion` first for a precondition.
   * @throws {KubectlConflictError} when a precondition fails (the API answers Conflict, or a
   *   `test` op on the resourceVersion failed and the object has another one now).
   * @throws {KubectlNotFoundError} when the object is gone.
   */
  async jsonPatch<T extends KubeObject>(
    kind: string,
    name: string,
    patch: unknown[],
    options: KubectlCallOptions = {},
  ): Promise<T> {
    const args = ["patch", kind, name, "--type=json", "-p", JSON.stringify(patch)];
    try {
      return await this.json<T>(args, options);
    } catch (error) {
      // A failed `test` op is no Status reason kubectl prints ("The request is invalid"): the
      // object read again tells whether its resourceVersion moved on.
      const tested = patch.find((op) =>
        (op as { op?: string; path?: string }).op === "test" &&
        (op as { path?: string }).path === "/metadata/resourceVersion"
      ) as { value?: string } | undefined;
      if (!(error instanceof KubectlError) || !tested || error instanceof KubectlConflictError) {
        throw error;
      }
      const now = await this.get(kind, name, { signal: options.signal });
      if (!now) throw new KubectlNotFoundError(error.message, { extraInfo: error.extraInfo });
      if (now.metadata.resourceVersion !== tested.value) {
        throw new KubectlConflictError(error.message, {
          extraInfo: { ...error.extraInfo, reason: "Conflict" },
        });
      }
      throw error;
    }
  }

  /** The last `tail` lines of container `container` of pod `pod` ("" when kubectl fails). */
  async logs(
    pod: string,
    options: KubectlCallOptions & { container?: string; tail?: number } = {},
  ): Promise<string> {
    const args = ["logs", pod, `--tail=${options.tail ?? 20}`];
    if (options.container) args.push("-c", options.container);
    const result = await this.call(args, options);
    return result.code === 0 ? result.stdout.trim() : "";
  }

  /**
   * Follows `kubectl get <kind> -l <selector> --watch --output-watch-events -o json`: kubectl
   * first reports every matching object as ADDED, then each change. Calls `onEvent` for each
   * until kubectl exits (the API server ends watches after a while) or `signal` aborts it.
   * @returns how kubectl exited, with its stderr.
   */
  async watch(
    kind: string,
    selector: string,
    onEvent: (event: WatchEvent) => void,
    options: Pick<KubectlCallOptions, "signal"> = {},
  ): Promise<KubectlResult> {
    const args = ["get", kind, "-l", selector, "--watch", "--output-watch-events", "-o", "json"];
    const splitter = new JsonObjectSplitter();
    return await this.follow(args, (text) => {
      for (const object of splitter.push(text)) onEvent(object as WatchEvent);
    }, options);
  }

  /**
   * Runs `kubectl <args>`, a command that keeps printing, and hands `onText` what it prints on
   * stdout until it exits or `options.signal` aborts it (SIGKILL). No timeout.
   * @throws {UnavailableError} when kubectl is not found on PATH.
   */
  async follow(
    args: string[],
    onText: (text: string) => void,
    options: Pick<KubectlCallOptions, "signal"> = {},
  ): Promise<KubectlResult> {
    if (options.signal?.aborted) return { code: 124, stdout: "", stderr: "" };
    return await followChild(this.spawn(args), onText, options.signal);
  }

  /**
   * Starts `kubectl <global flags> <args>` as a child with stdout and stderr piped (for a
   * watch or a proxy: Deno.Command, not dax, so a kill always reaches it).
   * @throws {UnavailableError} when kubectl is not found on PATH.
   */
  spawn(args: string[]): Deno.ChildProcess {
    try {
      const child = new Deno.Command(this.#binary, {
        args: [...this.#global, ...args],
        env: this.#env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      this.#spawned++;
      return child;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new UnavailableError(
          `Cannot run "${commandName(args)}": "${this.#binary}" not found on PATH`,
        );
      }
      throw error;
    }
  }
}

/** "kubectl get", "kubectl config view": the command an argv runs, without its arguments. */
export function commandName(args: string[]): string {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === undefined) break;
    if (GLOBAL_FLAGS.has(arg)) i++;
    else if (!arg.startsWith("-")) words.push(arg);
  }
  const count = words[0] === "config" || words[0] === "rollout" ? 2 : 1;
  return ["kubectl", ...words.slice(0, count)].join(" ");
}

/** A klog line ("E1126 04:06:37.576551   26061 memcache.go:265] ..."): kubectl's own retries. */
const KLOG_LINE = /^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [^\]]+\] /;

/** `stderr` without klog lines when it says something else too (the line kubectl ends with). */
function withoutKlogLines(stderr: string): string {
  const lines = stderr.split("\n");
  const plain = lines.filter((line) => line.trim() !== "" && !KLOG_LINE.test(line));
  return plain.length > 0 ? plain.join("\n") : stderr;
}

/**
 * The Status reason in kubectl's `Error from server (Reason): ...` line: the API's own
 * machine-readable reason (NotFound, AlreadyExists, Conflict, ...), or "" when there is none.
 */
function statusReason(stderr: string): string {
  return SERVER_REASON.exec(stderr)?.[1] ?? "";
}

/**
 * The error for a kubectl run that exited non-zero: an UnavailableError when the API server did
 * not answer (`answered` false: it gave no Status and did not answer a check either), else a
 * KubectlError typed by the Status reason it printed.
 */
export function kubectlFailure(
  args: string[],
  result: KubectlResult,
  answered = true,
): RockError {
  const evidence = tail(withoutKlogLines(result.stderr));
  const name = commandName(args);
  const message = `Cannot run "${name}": exit code ${result.code}${colon(evidence)}`;
  const reason = statusReason(result.stderr);
  const extraInfo = { command: name, exit_code: result.code, stderr: evidence, reason };
  if (!reason && !answered) {
    return new UnavailableError(message, { extraInfo });
  }
  const type = reason === "NotFound"
    ? KubectlNotFoundError
    : reason === "AlreadyExists"
    ? KubectlAlreadyExistsError
    : reason === "Conflict"
    ? KubectlConflictError
    : KubectlError;
  return new type(message, { extraInfo });
}
