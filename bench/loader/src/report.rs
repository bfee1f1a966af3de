//! The Markdown of the loader section of docs/benchmarks.md.

use std::fmt::Write as _;

use crate::{Phase, Results};

pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED LOADER RESULTS (scripts/bench-loader) -->";
pub const END_MARKER: &str = "<!-- END GENERATED LOADER RESULTS -->";

/// Goals of issue 5: rows/s of one loader, and freshness p99.
const GOAL_ROWS: f64 = 150_000.0;
/// Goal of the cluster issue: one loader into the 2×2 cluster.
const GOAL_CLUSTER_ROWS: f64 = 100_000.0;
const STRETCH_ROWS: f64 = 300_000.0;
const GOAL_P99_S: f64 = 5.0;

fn rate(phase: &Phase) -> f64 {
    phase.rows as f64 / phase.wall_s
}

fn per_cpu(rows: u64, cpu: Option<f64>) -> String {
    cpu.filter(|c| *c > 0.0)
        .map_or_else(|| "–".to_owned(), |c| format!("{:.0}", rows as f64 / c))
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

pub fn render(r: &Results) -> String {
    let mut out = String::new();
    write_run(&mut out, r);
    write_goals(&mut out, r);
    write_phases(&mut out, r);
    write_insert_time(&mut out, r);
    write_compression(&mut out, r);
    write_deduplication(&mut out, r);
    write_freshness(&mut out, r);
    out
}

/// What was measured, on what.
fn write_run(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "Measured {} (commit {}), {} events of {:.0} bytes on average, {} partitions, batches of {} rows, no lake; {} CPUs shared with other work (load average at the end: {}).\n",
        r.measured_at,
        r.commit,
        r.events,
        r.event_bytes,
        r.partitions,
        r.batch_rows,
        r.cpus,
        r.load_average
    );
}

/// The goals of issue 5, with their verdicts.
fn write_goals(out: &mut String, r: &Results) {
    let loader = rate(&r.loader);
    let [_, _, p99, _] = r.freshness_s;
    let _ = writeln!(out, "| goal | measured | verdict |\n|---|---|---|");
    let _ = writeln!(
        out,
        "| one loader ≥ {GOAL_ROWS:.0} rows/s of 1 KB events (stretch {STRETCH_ROWS:.0}) | {loader:.0} rows/s ({:.2}× the raw INSERT baseline) | {} (stretch {}) |",
        loader / rate(&r.raw_insert),
        verdict(loader >= GOAL_ROWS),
        if loader >= STRETCH_ROWS {
            "met"
        } else {
            "not met"
        }
    );
    let _ = writeln!(
        out,
        "| freshness p99 < {GOAL_P99_S:.0} s (ack → queryable) | p99 {p99:.2} s at {} events/s | {} |",
        r.fresh_rate,
        verdict(p99 < GOAL_P99_S)
    );
    if let Some((shape, cluster)) = &r.cluster {
        let rows = rate(cluster);
        let _ = writeln!(
            out,
            "| one loader into the ClickHouse cluster ≥ {GOAL_CLUSTER_ROWS:.0} rows/s | {rows:.0} rows/s into {shape} ({:.2}× the same load into one server; every node on these same cores) | {} |",
            rows / loader,
            verdict(rows >= GOAL_CLUSTER_ROWS)
        );
    }
    out.push('\n');
}

/// One row per phase, each against its baseline.
fn write_phases(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "| phase | wall s | rows/s (wall) | CPU s of the process | rows per CPU s | ClickHouse CPU s | vs its baseline |\n|---|---|---|---|---|---|---|"
    );
    let rows = [
        (&r.consume_only, None),
        (&r.raw_insert, None),
        (
            &r.loader_uncompressed,
            Some((rate(&r.raw_insert), "raw INSERT")),
        ),
        (&r.loader, Some((rate(&r.raw_insert), "raw INSERT"))),
        (
            &r.loader_no_dedup,
            Some((rate(&r.raw_insert), "raw INSERT")),
        ),
        (
            &r.raw_insert_no_ids,
            Some((rate(&r.raw_insert), "raw INSERT")),
        ),
        (&r.rebuild, None),
    ];
    let cluster = r.cluster.as_ref().map(|(_, phase)| {
        (
            phase,
            Some((rate(&r.loader), "the same load into one server")),
        )
    });
    let rows = rows.into_iter().chain(cluster);
    for (phase, baseline) in rows {
        let versus = baseline.map_or_else(
            || "1.00×".to_owned(),
            |(base, name)| {
                format!(
                    "{:.2}× {name}, {:.2}× consume only",
                    rate(phase) / base,
                    rate(phase) / rate(&r.consume_only)
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.0} | {} | {} | {} | {versus} |",
            phase.name,
            phase.wall_s,
            rate(phase),
            secs(phase.cpu_s),
            per_cpu(phase.rows, phase.cpu_s),
            secs(phase.clickhouse_cpu_s),
        );
    }
}

/// Where the loader's time went, from its own INSERT histogram.
fn write_insert_time(out: &mut String, r: &Results) {
    if let (Some(insert_s), Some(inserts)) = (r.loader_insert_s, r.loader_inserts) {
        let _ = writeln!(
            out,
            "\nWhere the loader's time went: its {inserts:.0} INSERTs (RowBinary encoding and LZ4 streamed to the server, and the server's answer) took {insert_s:.2} s of its {:.2} s wall time ({:.0}%); the rest is start-up, consuming and JSON decoding ({:.2} s CPU in all). One batch at a time per ClickHouse shard (here one server) is stored by its own task while the loop keeps consuming and filling the next, so consuming and decoding overlap the INSERT in flight.",
            r.loader.wall_s,
            100.0 * insert_s / r.loader.wall_s,
            r.loader.cpu_s.unwrap_or(f64::NAN)
        );
    }
}

/// LZ4 against no compression, same run.
fn write_compression(out: &mut String, r: &Results) {
    let loader = rate(&r.loader);
    let _ = writeln!(
        out,
        "\nLZ4 vs none, same run: the uncompressed load ran at {:.2}× the LZ4 load's rate ({} vs {} loader rows per CPU s; ClickHouse CPU {} vs {} s){}.",
        rate(&r.loader_uncompressed) / loader,
        per_cpu(r.loader_uncompressed.rows, r.loader_uncompressed.cpu_s),
        per_cpu(r.loader.rows, r.loader.cpu_s),
        secs(r.loader_uncompressed.clickhouse_cpu_s),
        secs(r.loader.clickhouse_cpu_s),
        r.loader_uncompressed_insert_s
            .map(|s| format!("; its INSERTs took {s:.2} s"))
            .unwrap_or_default()
    );
}

/// What deduplication costs the loader and the server, same run.
fn write_deduplication(out: &mut String, r: &Results) {
    let loader = rate(&r.loader);
    let (disk_bytes, disk_rows) = r.event_ids_disk;
    let _ = writeln!(
        out,
        "\nDeduplication, same run: the load with `dedup.window_secs = 0` ran at {:.2}× the default load's rate ({} vs {} loader rows per CPU s): the loader's own cost of deciding retries. The server's cost of keeping `event_ids` (the raw INSERT with and without its view): {:.2}× ({} vs {} s of ClickHouse CPU). State in memory after the load: {} entries, {} bytes ({} bytes per event in the window). `event_ids` on disk: {:.1} bytes per event ({disk_rows} rows). A restarted loader rebuilt its state from `event_ids` in {:.2} s ({:.0} events/s, start-up included).",
        rate(&r.loader_no_dedup) / loader,
        per_cpu(r.loader_no_dedup.rows, r.loader_no_dedup.cpu_s),
        per_cpu(r.loader.rows, r.loader.cpu_s),
        rate(&r.raw_insert_no_ids) / rate(&r.raw_insert),
        secs(r.raw_insert.clickhouse_cpu_s),
        secs(r.raw_insert_no_ids.clickhouse_cpu_s),
        r.dedup_entries
            .map_or_else(|| "–".to_owned(), |v| format!("{v:.0}")),
        r.dedup_bytes
            .map_or_else(|| "–".to_owned(), |v| format!("{v:.0}")),
        match (r.dedup_entries, r.dedup_bytes) {
            (Some(n), Some(b)) if n > 0.0 => format!("{:.1}", b / n),
            _ => "–".to_owned(),
        },
        disk_bytes as f64 / disk_rows.max(1) as f64,
        r.rebuild.wall_s,
        rate(&r.rebuild),
    );
}

/// Producer ack to queryable, while the loader ran.
fn write_freshness(out: &mut String, r: &Results) {
    let [p50, p90, p99, max] = r.freshness_s;
    let _ = writeln!(
        out,
        "\nFreshness over {} events produced at {} events/s for {} s while the loader ran (polled every 100 ms): p50 {p50:.2} s, p90 {p90:.2} s, p99 {p99:.2} s, max {max:.2} s.",
        r.fresh_events, r.fresh_rate, r.fresh_seconds
    );
}

/// Replaces the text between this section's markers in `doc`.
pub fn splice(doc: &str, generated: &str) -> anyhow::Result<String> {
    let start = doc
        .find(BEGIN_MARKER)
        .ok_or_else(|| anyhow::anyhow!("marker `{BEGIN_MARKER}` not found"))?;
    let stop = start
        + doc[start..]
            .find(END_MARKER)
            .ok_or_else(|| anyhow::anyhow!("no `{END_MARKER}` after `{BEGIN_MARKER}`"))?;
    Ok(format!(
        "{}{BEGIN_MARKER}\n\n{}\n{}",
        &doc[..start],
        generated.trim_end(),
        &doc[stop..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_this_section() {
        let doc =
            format!("a\n<!-- END GENERATED RESULTS -->\n{BEGIN_MARKER}\nold\n{END_MARKER}\nb\n");
        let spliced = splice(&doc, "new\n").unwrap();
        assert_eq!(
            spliced,
            format!("a\n<!-- END GENERATED RESULTS -->\n{BEGIN_MARKER}\n\nnew\n{END_MARKER}\nb\n")
        );
        assert!(splice("no markers", "x").is_err());
    }
}
