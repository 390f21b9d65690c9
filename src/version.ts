/** The version of rock, printed by `rock --version`. */
export const VERSION = "0.1.0";

/** The rocklet version reported where ROCK reports its own (`swe_rex_version`). */
export const ROCKLET_WIRE_VERSION = "1.2.17";
