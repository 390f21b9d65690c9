/**
 * GEM environments (the RL step API) inside a sandbox. The environments are Python (the `gem`
 * package); rock runs one bridge process per environment with the sandbox's own python,
 * speaking JSON lines over stdin and a private copy of stdout (the environment's own prints go
 * to stderr, so they cannot corrupt a reply). Calls to one environment run one at a time, in
 * order. Nothing starts until the first GEM call.
 */
import { GemEnvError, GemEnvNotFoundError, GemUnavailableError } from "../common/errors.ts";
import type {
  EnvCloseResponse,
  EnvListResponse,
  EnvMakeResponse,
  EnvResetResponse,
  EnvStepResponse,
} from "../protocol/rocklet.ts";

/**
 * The bridge: imports gem, then answers one JSON request per line on a private copy of the
 * original stdout. Values JSON cannot hold (numpy arrays and scalars) travel as lists and
 * numbers; anything else as its str().
 */
const BRIDGE = String.raw`
import json, os, sys, traceback
channel = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr

def plain(value):
    for name in ("tolist", "item"):
        method = getattr(value, name, None)
        if callable(method):
            return method()
    return str(value)

def reply(message):
    channel.write(json.dumps(message, default=plain) + "\n")
    channel.flush()

try:
    import gem
except BaseException as error:
    reply({"ok": False, "kind": "unavailable", "error": "%s: %s" % (type(error).__name__, error)})
    sys.exit(3)

env = None
for line in sys.stdin:
    request = json.loads(line)
    op = request["op"]
    try:
        if op == "make":
            env = gem.make(request["env_id"])
            result = {}
        elif op == "reset":
            observation, info = env.reset(seed=request.get("seed"))
            result = {"observation": observation, "info": info}
        elif op == "step":
            observation, reward, terminated, truncated, info = env.step(request["action"])
            result = {"observation": observation, "reward": reward, "terminated": terminated,
                      "truncated": truncated, "info": info}
        elif op == "close":
            close = getattr(env, "close", None)
            if callable(close):
                close()
            result = {}
        elif op == "list":
            from gem.envs.registration import ENV_REGISTRY
            result = {"env_id": list(ENV_REGISTRY.keys())}
        else:
            raise ValueError("unknown operation %r" % op)
        reply({"ok": True, "result": result})
    except BaseException as error:
        reply({"ok": False, "kind": "env", "error": "%s: %s" % (type(error).__name__, error),
               "error_type": type(error).__name__, "traceback": traceback.format_exc()})
`;

/** Pythons tried in order when ROCK_GEM_PYTHON does not name one. */
const PYTHONS = ["python3", "python"];

/** What the bridge answers to one request. */
type Reply =
  | { ok: true; result: Record<string, unknown> }
  | {
    ok: false;
    kind: "unavailable" | "env";
    error: string;
    error_type?: string;
    traceback?: string;
  };

/** One bridge process: requests in, one reply line each, in order. */
class Bridge {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  readonly #stderr: Promise<string>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines(child.stdout)[Symbol.asyncIterator]();
    this.#stderr = new Response(child.stderr).text().catch(() => "");
  }

  /** Sends `request` after every earlier one was answered; resolves with its reply. */
  call(request: Record<string, unknown>): Promise<Reply> {
    const run = this.#queue.then(async () => {
      try {
        await this.#writer.write(new TextEncoder().encode(`${JSON.stringify(request)}\n`));
      } catch {
        // The bridge ended already (it exits at once when gem cannot be imported): what it said
        // before, or how it exited, is read below and tells why.
      }
      return await this.#read();
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** The next reply; a bridge that exited first reports why (its stderr's tail). */
  async #read(): Promise<Reply> {
    const next = await this.#lines.next();
    if (!next.done) return JSON.parse(next.value) as Reply;
    const status = await this.#child.status;
    const stderr = (await this.#stderr).trim().split("\n").slice(-10).join("\n");
    return {
      ok: false,
      kind: "env",
      error: `the GEM bridge exited with code ${status.code}${stderr ? `: ${stderr}` : ""}`,
    };
  }

  /** Closes the bridge's input (it exits once it has answered what it was sent). */
  async closeInput(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }

  /** Ends the bridge: its input closes; after `graceMs` it is killed. */
  async stop(graceMs = 5_000): Promise<void> {
    await this.closeInput();
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }, graceMs);
    try {
      await this.#child.status;
      await this.#stderr;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Splits a byte stream into lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const bytes of stream) {
    const parts = (rest + decoder.decode(bytes, { stream: true })).split("\n");
    rest = parts.pop()!;
    for (const part of parts) if (part.trim() !== "") yield part;
  }
  if (rest.trim() !== "") yield rest;
}

/** The GEM environments of one runtime, keyed by sandbox id as ROCK keys them. */
export class GemEnvs {
  readonly #envs = new Map<string, Bridge>();
  readonly #python: string | undefined;

  /** `python`: the interpreter (default ROCK_GEM_PYTHON, else python3, else python on PATH). */
  constructor(options: { python?: string | undefined } = {}) {
    this.#python = options.python ?? (Deno.env.get("ROCK_GEM_PYTHON") || undefined);
  }

  /** Makes environment `envId` for `sandboxId` (an earlier one under that id is closed first). */
  async make(envId: string, sandboxId: string): Promise<EnvMakeResponse> {
    const bridge = this.#spawn();
    try {
      this.#check(await bridge.call({ op: "make", env_id: envId }), `make "${envId}"`);
    } catch (error) {
      await bridge.stop();
      throw error;
    }
    const previous = this.#envs.get(sandboxId);
    this.#envs.set(sandboxId, bridge);
    if (previous) await previous.stop();
    return { sandbox_id: sandboxId };
  }

  /** Steps the environment of `sandboxId` with `action`. */
  async step(sandboxId: string, action: unknown): Promise<EnvStepResponse> {
    const reply = await this.#env(sandboxId).call({ op: "step", action });
    const result = this.#check(reply, "step");
    return {
      observation: result.observation,
      reward: Number(result.reward),
      terminated: Boolean(result.terminated),
      truncated: Boolean(result.truncated),
      info: (result.info ?? {}) as Record<string, unknown>,
    };
  }

  /** Resets the environment of `sandboxId`, with `seed` when given. */
  async reset(sandboxId: string, seed?: number | null): Promise<EnvResetResponse> {
    const reply = await this.#env(sandboxId).call({ op: "reset", seed: seed ?? null });
    const result = this.#check(reply, "reset");
    return {
      observation: result.observation,
      info: (result.info ?? {}) as Record<string, unknown>,
    };
  }

  /** Closes the environment of `sandboxId` and ends its bridge. */
  async close(sandboxId: string): Promise<EnvCloseResponse> {
    const bridge = this.#env(sandboxId);
    this.#envs.delete(sandboxId);
    try {
      this.#check(await bridge.call({ op: "close" }), "close");
    } finally {
      await bridge.stop();
    }
    return { sandbox_id: sandboxId };
  }

  /** The ids gem's registry knows (`gem.envs.registration.ENV_REGISTRY`). */
  async list(): Promise<EnvListResponse> {
    const bridge = this.#spawn();
    try {
      const result = this.#check(await bridge.call({ op: "list" }), "list");
      return { env_id: (result.env_id ?? []) as string[] };
    } finally {
      await bridge.stop();
    }
  }

  /** Ends every bridge. */
  async closeAll(): Promise<void> {
    const bridges = [...this.#envs.values()];
    this.#envs.clear();
    await Promise.all(bridges.map((bridge) => bridge.stop()));
  }

  #env(sandboxId: string): Bridge {
    const bridge = this.#envs.get(sandboxId);
    if (!bridge) {
      throw new GemEnvNotFoundError(`No GEM environment was made for sandbox "${sandboxId}"`);
    }
    return bridge;
  }

  /** The result of a reply, or the typed error it reports. */
  #check(reply: Reply, what: string): Record<string, unknown> {
    if (reply.ok) return reply.result;
    if (reply.kind === "unavailable") {
      throw new GemUnavailableError(
        `Cannot ${what} a GEM environment: the sandbox's python cannot import the gem package ` +
          `(${reply.error})`,
      );
    }
    throw new GemEnvError(`GEM ${what} failed: ${reply.error}`, {
      extraInfo: { error_type: reply.error_type ?? null, traceback: reply.traceback ?? null },
    });
  }

  /** Starts a bridge with the first python found. */
  #spawn(): Bridge {
    const candidates = this.#python ? [this.#python] : PYTHONS;
    for (const python of candidates) {
      try {
        return new Bridge(
          new Deno.Command(python, {
            args: ["-u", "-c", BRIDGE],
            stdin: "piped",
            stdout: "piped",
            stderr: "piped",
          }).spawn(),
        );
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    throw new GemUnavailableError(
      `Cannot run a GEM environment: no python in the sandbox (looked for ${
        candidates.join(", ")
      })`,
    );
  }
}
