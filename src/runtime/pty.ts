/**
 * Pseudo-terminals for sessions, without anything installed in the image.
 *
 * Deno has no pty API, so the master side is opened through Deno's FFI on the C library the
 * Deno binary already links (glibc's `libc.so.6`): `open("/dev/ptmx")`, `unlockpt`, `ptsname_r`,
 * termios through `tcgetattr`/`cfmakeraw`/`tcsetattr`, the window size through the TIOCSWINSZ
 * ioctl. The child opens the slave by its path itself (a shell redirection), which makes it the
 * child's controlling terminal when the child leads its own session (Deno's `detached` spawn).
 *
 * Reading never blocks the event loop: masters are non-blocking, and one `poll()` on a worker
 * thread (a non-blocking FFI call) waits for every terminal at once (the Poller below), so a
 * thousand idle sessions hold one thread, not a thousand (Deno runs such calls on a small pool
 * that file operations share). An eventfd wakes it when the set of waits changes.
 */
import { RockError } from "../common/errors.ts";
import { shellQuote } from "./shell_words.ts";

/** The pty cannot be had here (no C library to call, no /dev/ptmx, no devpts). */
export class PtyUnavailableError extends RockError {}

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const EAGAIN = 11;
const EINTR = 4;
const TCSANOW = 0;
const TIOCSWINSZ = 0x5414;
/** Generous for glibc's struct termios (60 bytes on x86_64 and aarch64). */
const TERMIOS_BYTES = 128;
/** termios fields (tcflag_t, 4 bytes each) and the c_cc array, as glibc lays them out on Linux. */
const C_IFLAG = 0;
const C_OFLAG = 4;
const C_LFLAG = 12;
const C_CC = 17;
const VINTR = 0;
const VEOF = 4;
const VTIME = 5;
const VMIN = 6;
const ISIG = 0o1;
const ICANON = 0o2;
const ECHO = 0o10;
const IEXTEN = 0o100000;
const ICRNL = 0o400;
const IXON = 0o2000;
const OPOST = 0o1;
const ONLCR = 0o4;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
  getpwnam: { parameters: ["buffer"], result: "pointer" },
  tcgetpgrp: { parameters: ["i32"], result: "i32" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
let libcError: unknown;

/** The C library's functions, opened once; throws PtyUnavailableError where it cannot be. */
function library(): Libc {
  if (libc) return libc;
  if (libcError === undefined) {
    try {
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
      return libc;
    } catch (error) {
      libcError = error;
    }
  }
  throw new PtyUnavailableError(
    `Cannot open a pseudo-terminal: the C library cannot be loaded (${String(libcError)})`,
    { cause: libcError },
  );
}

/** errno of the last failed call on this thread. */
function errno(c: Libc): number {
  const at = c.__errno_location();
  return at ? new Deno.UnsafePointerView(at).getInt32() : 0;
}

/** A NUL-terminated C string. */
function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`);
}

/** One wait: `fd` ready for `events`, or given up. */
interface Waiter {
  fd: number;
  events: number;
  resolve: (outcome: "ready" | "closed") => void;
}

/**
 * One poll() for every terminal's waits, on one worker thread at a time; it runs while anything
 * waits and is woken (an eventfd) whenever a wait is added or a terminal goes, so it polls the
 * new set. Descriptors are closed only between two polls.
 */
class Poller {
  readonly #c: Libc;
  readonly #wake: number;
  readonly #waiters = new Set<Waiter>();
  readonly #toClose: number[] = [];
  #running = false;
  #polling = false;

  constructor(c: Libc) {
    this.#c = c;
    this.#wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.#wake < 0) {
      throw new PtyUnavailableError(
        `Cannot open a pseudo-terminal: eventfd failed (errno ${errno(c)})`,
      );
    }
  }

  /** Settles when `fd` is ready for `events` (or hung up), or "closed" after forget(fd). */
  wait(fd: number, events: number): Promise<"ready" | "closed"> {
    const { promise, resolve } = Promise.withResolvers<"ready" | "closed">();
    this.#waiters.add({ fd, events, resolve });
    this.#changed();
    return promise;
  }

  /** Gives up the waits on `fd` and closes it once no poll uses it. */
  closeFd(fd: number): void {
    for (const waiter of this.#waiters) {
      if (waiter.fd === fd) {
        this.#waiters.delete(waiter);
        waiter.resolve("closed");
      }
    }
    if (this.#polling) {
      this.#toClose.push(fd);
      this.#signal();
    } else {
      this.#c.close(fd);
    }
  }

  #changed(): void {
    if (this.#polling) this.#signal();
    else if (!this.#running) void this.#run();
  }

  #signal(): void {
    const one = new Uint8Array(8);
    one[0] = 1;
    this.#c.write(this.#wake, one, 8n);
  }

  async #run(): Promise<void> {
    this.#running = true;
    const drain = new Uint8Array(8);
    try {
      while (this.#waiters.size > 0) {
        const waiters = [...this.#waiters];
        const fds = new Uint8Array(8 * (waiters.length + 1));
        const view = new DataView(fds.buffer);
        view.setInt32(0, this.#wake, true);
        view.setInt16(4, POLLIN, true);
        waiters.forEach((waiter, i) => {
          view.setInt32(8 * (i + 1), waiter.fd, true);
          view.setInt16(8 * (i + 1) + 4, waiter.events, true);
        });
        this.#polling = true;
        try {
          await this.#c.poll(fds, BigInt(waiters.length + 1), -1);
        } finally {
          this.#polling = false;
        }
        if (view.getInt16(6, true) !== 0) this.#c.read(this.#wake, drain, 8n);
        for (const fd of this.#toClose.splice(0)) this.#c.close(fd);
        waiters.forEach((waiter, i) => {
          // Ready, hung up or failed: the next read or write says which.
          if (view.getInt16(8 * (i + 1) + 6, true) !== 0 && this.#waiters.delete(waiter)) {
            waiter.resolve("ready");
          }
        });
      }
    } finally {
      this.#running = false;
    }
  }
}

let poller: Poller | undefined;

/** The process's one Poller. */
function sharedPoller(c: Libc): Poller {
  return poller ??= new Poller(c);
}

/**
 * The bash that makes the terminal at `path` a shell's stdin and stdout (and stderr, with
 * `stderr`), ending in `; `. Run by the leader of a new session (Deno's detached spawn), opening
 * it makes it that session's controlling terminal.
 */
export function openTerminalScript(path: string, options: { stderr: boolean }): string {
  return `exec 0<>${shellQuote(path)} 1>&0${options.stderr ? " 2>&0" : ""}; `;
}

/** How the terminal treats what flows through it. */
export type PtyMode =
  /**
   * For sessions driven by a program: no echo, no line editing (a line of any length passes
   * whole; canonical mode would cut lines at 4095 bytes), no signal or flow-control characters,
   * output passed as written (no `\n` -> `\r\n`).
   */
  | "raw"
  /** For a person at a terminal: the kernel's defaults (line editing, echo, Ctrl-C, `\r\n`). */
  | "terminal";

/** Options of Pty.open. */
export interface PtyOptions {
  cols: number;
  rows: number;
  mode: PtyMode;
}

/** The master side of a pseudo-terminal. The child opens `path`. */
export class Pty {
  /** The slave's path, e.g. /dev/pts/3. */
  readonly path: string;
  readonly #fd: number;
  readonly #c: Libc;
  readonly #poller: Poller;
  #closed = false;
  #reading = false;
  #writing: Promise<void> = Promise.resolve();

  private constructor(c: Libc, fd: number, path: string) {
    this.#c = c;
    this.#fd = fd;
    this.#poller = sharedPoller(c);
    this.path = path;
  }

  /**
   * Opens a master, unlocks its slave, sets the mode and size.
   * @throws {PtyUnavailableError} when the system offers no pseudo-terminals.
   */
  static open(options: PtyOptions): Pty {
    const c = library();
    const fd = c.open(cString("/dev/ptmx"), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      throw new PtyUnavailableError(
        `Cannot open a pseudo-terminal: /dev/ptmx cannot be opened (errno ${errno(c)})`,
      );
    }
    const fail = (what: string): never => {
      const code = errno(c);
      c.close(fd);
      throw new PtyUnavailableError(`Cannot open a pseudo-terminal: ${what} (errno ${code})`);
    };
    if (c.unlockpt(fd) !== 0) fail("unlockpt failed");
    const name = new Uint8Array(128);
    if (c.ptsname_r(fd, name, BigInt(name.length)) !== 0) fail("ptsname_r failed");
    const path = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    let pty: Pty;
    try {
      pty = new Pty(c, fd, path);
    } catch (error) {
      c.close(fd);
      throw error;
    }
    try {
      pty.#setMode(options.mode);
      pty.resize(options.cols, options.rows);
    } catch (error) {
      pty.close();
      throw error;
    }
    return pty;
  }

  #setMode(mode: PtyMode): void {
    const termios = new Uint8Array(TERMIOS_BYTES);
    if (this.#c.tcgetattr(this.#fd, termios) !== 0) {
      throw new PtyUnavailableError(
        `Cannot read the terminal's settings (errno ${errno(this.#c)})`,
      );
    }
    const view = new DataView(termios.buffer);
    const flags = (offset: number, set: number, clear: number) =>
      view.setUint32(offset, (view.getUint32(offset, true) | set) & ~clear, true);
    if (mode === "raw") {
      this.#c.cfmakeraw(termios);
      termios[C_CC + VMIN] = 1;
      termios[C_CC + VTIME] = 0;
    } else {
      // The kernel's defaults already are a person's terminal; make sure of the parts that matter.
      flags(C_IFLAG, ICRNL | IXON, 0);
      flags(C_OFLAG, OPOST | ONLCR, 0);
      flags(C_LFLAG, ISIG | ICANON | ECHO | IEXTEN, 0);
      termios[C_CC + VINTR] = 3;
      termios[C_CC + VEOF] = 4;
    }
    if (this.#c.tcsetattr(this.#fd, TCSANOW, termios) !== 0) {
      throw new PtyUnavailableError(`Cannot set the terminal's mode (errno ${errno(this.#c)})`);
    }
  }

  /**
   * Gives the terminal to `user` (as login does), so a shell started as that user can open it.
   * @throws {PtyUnavailableError} when the user is unknown or the owner cannot be changed.
   */
  giveTo(user: string): void {
    const entry = this.#c.getpwnam(cString(user));
    if (!entry) {
      throw new PtyUnavailableError(`Cannot give the terminal to "${user}": no such user`);
    }
    const view = new Deno.UnsafePointerView(entry);
    // struct passwd: two pointers, then pw_uid and pw_gid.
    try {
      Deno.chownSync(this.path, view.getUint32(16), view.getUint32(20));
    } catch (error) {
      throw new PtyUnavailableError(`Cannot give the terminal to "${user}": ${String(error)}`, {
        cause: error,
      });
    }
  }

  /** The terminal's foreground process group (what Ctrl-C reaches), if it has one. */
  foregroundGroup(): number | undefined {
    if (this.#closed) return undefined;
    const group = this.#c.tcgetpgrp(this.#fd);
    return group > 0 ? group : undefined;
  }

  /** Sets the window size the programs on the terminal see (they get SIGWINCH). */
  resize(cols: number, rows: number): void {
    if (this.#closed) return;
    const size = new Uint8Array(8);
    const view = new DataView(size.buffer);
    view.setUint16(0, Math.max(1, Math.min(rows, 0xffff)), true);
    view.setUint16(2, Math.max(1, Math.min(cols, 0xffff)), true);
    if (this.#c.ioctl(this.#fd, BigInt(TIOCSWINSZ), size) !== 0) {
      throw new PtyUnavailableError(`Cannot set the terminal's size (errno ${errno(this.#c)})`);
    }
  }

  /**
   * What the programs on the terminal print, until every slave is closed (the programs exited)
   * or `close()`. One reader at a time.
   */
  async *read(): AsyncGenerator<Uint8Array> {
    if (this.#reading) throw new RockError("The pseudo-terminal already has a reader");
    this.#reading = true;
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (!this.#closed) {
        const n = this.#c.read(this.#fd, buffer, BigInt(buffer.length));
        if (n > 0n) {
          yield buffer.slice(0, Number(n));
          continue;
        }
        if (n === 0n) return;
        const code = errno(this.#c);
        if (code === EINTR) continue;
        // EIO: no slave is open any more (the programs are gone).
        if (code !== EAGAIN) return;
        const ready = await this.#wait(POLLIN);
        if (ready === "closed") return;
      }
    } finally {
      this.#reading = false;
    }
  }

  /** Writes `bytes` whole (waiting while the terminal's input queue is full). */
  write(bytes: Uint8Array): Promise<void> {
    const next = this.#writing.then(() => this.#writeAll(bytes));
    this.#writing = next.catch(() => {});
    return next;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let at = 0;
    const data = new Uint8Array(bytes);
    while (at < data.length) {
      if (this.#closed) throw new RockError("The pseudo-terminal is closed");
      const n = this.#c.write(this.#fd, data.subarray(at), BigInt(data.length - at));
      if (n >= 0n) {
        at += Number(n);
        continue;
      }
      const code = errno(this.#c);
      if (code === EINTR) continue;
      if (code !== EAGAIN) {
        throw new RockError(`Cannot write to the pseudo-terminal (errno ${code})`);
      }
      if (await this.#wait(POLLOUT) === "closed") {
        throw new RockError("The pseudo-terminal is closed");
      }
    }
  }

  /** Waits until the master is ready for `events` (or hangs up), or close() is called. */
  #wait(events: number): Promise<"ready" | "closed"> {
    return this.#closed ? Promise.resolve("closed") : this.#poller.wait(this.#fd, events);
  }

  /** Closes the master (the programs on the terminal get a hang-up) and ends any wait. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.closeFd(this.#fd);
  }
}
