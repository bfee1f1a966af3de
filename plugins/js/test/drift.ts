// WIT drift check, type-checked only (`tsc -p test/tsconfig.json`, after
// `node tools/wit-types.mjs .wit-types`): the SDK's exports and every plugin
// module must be assignable to what `jco` generates from wit/0.2.0 for the
// two worlds, and the SDK's own copies of WIT names must equal the
// generated ones. A WIT change that breaks the SDK fails `tsc` here.

import type * as ValidatorWorld from "#wit/validator/validator.js";
import type * as EnricherWorld from "#wit/enricher/enricher.js";
import type * as GenTypes from "#wit/validator/interfaces/sluice-plugin-types.js";
import type * as GenLog from "#wit/validator/interfaces/sluice-plugin-log.js";
import type * as SdkLog from "sluice:plugin/log@0.2.0";
import * as sdk from "sluice-plugin";

import * as botFilter from "../examples/bot-filter/src/index.ts";
import * as piiScrubber from "../examples/pii-scrubber/src/index.ts";
import * as requiredProperties from "../examples/required-properties/src/index.ts";
import * as infiniteLoop from "../fixtures/infinite-loop/src/index.ts";
import * as memoryBomb from "../fixtures/memory-bomb/src/index.ts";
import * as throws from "../fixtures/throws/src/index.ts";
import * as timer from "../fixtures/timer/src/index.ts";
import * as tagEnricher from "../fixtures/tag-enricher/src/index.ts";

/** `true` when A and B are the same type. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// What defineValidator / defineEnricher return is the interface each world exports.
export const validatorExport: typeof ValidatorWorld.validate = {} as sdk.ValidatorExport;
export const enricherExport: typeof EnricherWorld.enrich = {} as sdk.EnricherExport;

// Every plugin module exports what its world requires (componentize-js
// finds the interface by its name: `validate` / `enrich`).
export const validators: (typeof ValidatorWorld)[] = [requiredProperties, botFilter, infiniteLoop, memoryBomb, throws, timer];
export const enrichers: (typeof EnricherWorld)[] = [piiScrubber, tagEnricher];

// The flags the SDK sets are exactly the WIT's (a renamed flag would
// otherwise still type-check: the generated flags are all optional).
export const flagNames: Same<keyof GenTypes.Fields, sdk.FlagName> = true;
export const flagsComplete: Same<Required<GenTypes.Fields>, sdk.Flags> = true;

// Data types, both ways where the SDK builds or reads them.
export const needs: Same<GenTypes.Needs["spans"], sdk.Needs["spans"]> = true;
export const batch: Same<GenTypes.Batch, sdk.Batch> = true;
export const verdict: Same<GenTypes.Verdict, sdk.Verdict> = true;
export const enriched: Same<GenTypes.Enriched, sdk.Enriched> = true;
export const pluginError: Same<GenTypes.PluginError, sdk.PluginErrorPayload> = true;

// The SDK's declaration of the host's log import (sdk/host.d.ts) is the WIT's.
export const level: Same<GenLog.Level, SdkLog.Level> = true;
export const logFn: Same<typeof GenLog.log, typeof SdkLog.log> = true;
