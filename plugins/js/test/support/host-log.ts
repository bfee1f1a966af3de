// Stands in for the host's `sluice:plugin/log@0.2.0` in unit tests (the
// test bundles resolve that import here): records every line.
import type { Level } from "sluice:plugin/log@0.2.0";

export const logged: { level: Level; message: string }[] = [];

export function log(level: Level, message: string): void {
  logged.push({ level, message });
}
