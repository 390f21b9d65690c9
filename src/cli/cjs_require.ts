/**
 * Gives bundles a `require`. npm packages shipped as CommonJS (yaml's node build, for one) call
 * `require("node:process")` lazily; in an ES module bundle (`deno bundle`) there is no `require`
 * and the bundler's shim throws "Dynamic require ... is not supported". Imported first by the
 * entry points, before any such package initializes.
 */
import { createRequire } from "node:module";

const scope = globalThis as { require?: unknown };
scope.require ??= createRequire(import.meta.url);
