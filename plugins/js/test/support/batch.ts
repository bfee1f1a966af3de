// Builds `batch` records as the host sends them.
import type { Batch } from "sluice-plugin";

/** A batch of these events (serialised as one JSON array, no spans). */
export function batch(events: object[]): Batch {
  return { events: JSON.stringify(events), spans: new Uint32Array() };
}

/** A batch from an already serialised JSON array text. */
export function rawBatch(events: string): Batch {
  return { events, spans: new Uint32Array() };
}

let next = 0;

/** An event with a fresh id. */
export function event(name: string, properties?: unknown): object {
  next += 1;
  const event_id = `0190d6a8-0000-7000-8000-${String(next).padStart(12, "0")}`;
  return properties === undefined ? { event_id, name } : { event_id, name, properties };
}

/** An event's `properties` and `context` as JSON texts, written into the batch as they are. */
export interface RawEvent {
  name?: string;
  properties: string;
  context?: string;
}

/**
 * A batch of events whose `properties` and `context` are given as JSON
 * texts (spacing, repeated keys and number spelling kept), as the host
 * writes what the client sent.
 */
export function rawEvents(events: RawEvent[]): Batch {
  const items = events.map((e, i) => {
    const head = `{"event_id":"raw-${i + 1}","name":${JSON.stringify(e.name ?? "x")},"properties":${e.properties}`;
    return e.context === undefined ? `${head}}` : `${head},"context":${e.context}}`;
  });
  return rawBatch(`[${items.join(",")}]`);
}
