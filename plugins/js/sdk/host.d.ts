// The one interface the host offers plugins, `sluice:plugin/log@0.2.0`
// (wit/0.2.0/log.wit), as componentize-js presents it to JavaScript. The
// drift test (test/drift.ts) checks this against the types `jco` generates
// from the WIT.
declare module "sluice:plugin/log@0.2.0" {
  /** WIT `enum level`: jco represents enum cases as their kebab-case names. */
  export type Level = "trace" | "debug" | "info" | "warn" | "error";
  /** Writes one log line (tagged and rate-limited by the host). */
  export function log(level: Level, message: string): void;
}
