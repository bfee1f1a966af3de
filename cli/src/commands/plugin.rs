//! `sluice plugin new|build|test|run|configure|upload`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use sluice_cli::plugin;

use super::AdminArgs;

#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Scaffold a plugin in Rust, TypeScript, JavaScript or Python.
    ///
    /// Creates DIR/NAME with a plugin of the kind that builds and passes its
    /// own unit tests as generated: a validator that rejects the event names
    /// configured as `{"blocked_events": [...]}` (code `blocked_event`), or an
    /// enricher that adds the configured `{"environment": ...}` as a property.
    ///
    /// rust: a crate (Cargo.toml, src/lib.rs). ts / js: package.json naming
    /// the world, src/index.ts (.js), test/index.test.ts (.js), tsconfig.json
    /// (jsconfig.json), package-lock.json. python: NAME_WITH_UNDERSCORES.py,
    /// its test_*.py, sluice.toml naming the world, requirements.txt. Each
    /// depends on its SDK by version and carries the SDK package shipped with
    /// sluice in vendor/, so the directory builds on any machine with the
    /// language's toolchain, without a Sluice checkout.
    #[command(
        after_help = "Then: `sluice plugin test DIR/NAME` and `sluice plugin build DIR/NAME`."
    )]
    New {
        /// Plugin name: lowercase letters, digits and `-`, e.g. `block-test-events`.
        name: String,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        /// The plugin's language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "ts", "js", "python"])]
        lang: String,
        /// Directory to create the plugin in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        sdk: SdkArg,
    },
    /// Build a plugin into a WebAssembly component and print its path.
    ///
    /// The language is detected from the directory: Cargo.toml (Rust:
    /// `cargo build --release --target wasm32-wasip2`, the component in
    /// cargo's target directory); package.json with "sluice" (TypeScript,
    /// JavaScript: `npm ci` from the project's lockfile, then the SDK
    /// package's `sluice-plugin build`, esbuild and componentize-js; needs
    /// Node.js 20 and npm); sluice.toml (Python: a venv in DIR/.venv from
    /// DIR/requirements.txt, then `python -m sluice_plugin_tools build`,
    /// componentize-py; needs Python 3.11). TypeScript, JavaScript and Python
    /// components go to DIR/dist/<dir name, `-` as `_`>.wasm.
    Build {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin's unit tests natively, with its language's toolchain.
    ///
    /// Rust: `cargo test`. TypeScript, JavaScript: tsc (with a tsconfig.json),
    /// then test/*.test.{ts,js} with `node --test`, bundled by esbuild with
    /// the SDK (the SDK package's `sluice-plugin test`). Python: pytest, from
    /// the project's venv (DIR/.venv). Installs the toolchain as `build` does.
    Test {
        /// The plugin's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a component over a JSON file of sample events and print each result.
    ///
    /// Uses the gateway's runtime and limits; needs no Kafka. Exits 1 if any
    /// event was rejected or failed, so it can gate a pull request.
    Run {
        component: PathBuf,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        /// The team's plugin configuration (a JSON object).
        #[arg(long, default_value = "{}")]
        config: String,
        /// A JSON array of events in the ingest API's shape, or {"events": [...]}.
        #[arg(long)]
        events: PathBuf,
    },
    /// Change a plugin's configuration, failure policy, order, enabled state
    /// or the events it runs on.
    Configure(ConfigureArgs),
    /// Upload a component to a gateway and wait until it runs (unless --no-activate).
    Upload {
        component: PathBuf,
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        #[arg(long, value_parser = ["validator", "enricher"])]
        kind: String,
        #[arg(long)]
        no_activate: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct SdkArg {
    /// The directory holding the SDK packages (scripts/package-sdks makes
    /// them) [default: SLUICE_SDK_DIR, else <dir of sluice>/../share/sluice/sdk,
    /// else ${SLUICE_CACHE:-~/.cache/sluice}/sdk]. For developing the Rust SDK
    /// itself, its sources (plugins/sdk): the project then depends on them by
    /// path and builds only on this machine.
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigureArgs {
    #[arg(long)]
    team: String,
    #[arg(long)]
    name: String,
    /// The team's configuration for the plugin (a JSON object).
    #[arg(long)]
    config: Option<String>,
    /// What happens to events when the plugin fails.
    #[arg(long, value_parser = ["reject", "pass", "dead_letter"])]
    policy: Option<String>,
    /// Position in the chain (validators always run before enrichers).
    #[arg(long)]
    order: Option<i32>,
    /// Re-enable (true) or disable (false) the plugin.
    #[arg(long)]
    enabled: Option<bool>,
    /// Run the plugin only on events with this name (repeat for more);
    /// the others pass it unchanged, without a call.
    #[arg(long = "event", value_name = "NAME")]
    events: Vec<String>,
    /// Run the plugin on every event again (clears --event).
    #[arg(long, conflicts_with = "events")]
    all_events: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

pub async fn run(action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New {
            name,
            kind,
            lang,
            dir,
            sdk,
        } => {
            let kind = plugin::parse_kind(&kind)?;
            let lang: plugin::Lang = lang.parse()?;
            let root = plugin::scaffold(&dir, &name, kind, lang, sdk.sdk.as_deref())?;
            println!("created {}", root.display());
            println!("next: sluice plugin test {}", root.display());
            println!("      sluice plugin build {}", root.display());
        }
        PluginAction::Build { dir } => {
            let path = plugin::build(&dir)?;
            let size = std::fs::metadata(&path)?.len();
            println!("{} ({} KiB)", path.display(), size / 1024);
        }
        PluginAction::Test { dir } => plugin::test(&dir)?,
        PluginAction::Run {
            component,
            kind,
            config,
            events,
        } => {
            let kind = plugin::parse_kind(&kind)?;
            // Off the async workers, as the gateway runs plugins: WASI's
            // blocking stdio (a guest's panic message, a Python traceback)
            // enters the runtime itself, which it may not from a task.
            let refused = tokio::task::spawn_blocking(move || {
                plugin::run(&component, kind, &config, &events)
            })
            .await??;
            if refused > 0 {
                std::process::exit(1);
            }
        }
        PluginAction::Configure(args) => configure(args).await?,
        PluginAction::Upload {
            component,
            team,
            name,
            version,
            kind,
            no_activate,
            admin,
        } => {
            let client = super::admin_client(admin)?;
            let bytes = std::fs::read(&component)?;
            let mut uploaded = client
                .upload_plugin(&team, &name, &version, &kind, !no_activate, bytes)
                .await?;
            if !no_activate {
                uploaded = client
                    // A TypeScript or Python component compiles in seconds
                    // to tens of seconds on a cold replica.
                    .wait_active(&team, &name, &version, Duration::from_secs(120))
                    .await?;
            }
            println!(
                "uploaded {team}/{name} {version}: state {}, active version {}",
                uploaded["state"].as_str().unwrap_or("?"),
                uploaded["active_version"].as_str().unwrap_or("none")
            );
        }
    }
    Ok(())
}

/// `sluice plugin configure`: changes a plugin's record through the admin API.
async fn configure(args: ConfigureArgs) -> anyhow::Result<()> {
    let ConfigureArgs {
        team,
        name,
        config,
        policy,
        order,
        enabled,
        events,
        all_events,
        admin,
    } = args;
    let client = super::admin_client(admin)?;
    let mut change = serde_json::Map::new();
    if let Some(config) = config {
        let value: serde_json::Value = serde_json::from_str(&config)
            .map_err(|e| anyhow::anyhow!("--config is not JSON: {e}"))?;
        change.insert("config".into(), value);
    }
    if let Some(policy) = policy {
        change.insert("policy".into(), policy.into());
    }
    if let Some(order) = order {
        change.insert("order".into(), order.into());
    }
    if let Some(enabled) = enabled {
        change.insert("enabled".into(), enabled.into());
    }
    if all_events || !events.is_empty() {
        change.insert("events".into(), events.into());
    }
    let mut updated = client.update_plugin(&team, &name, change.into()).await?;
    // Return once the change is in force on the gateway (its chain rebuilt),
    // so that the next request sees it; a disabled or inactive plugin has
    // nothing to wait for.
    if let Some(version) = updated["active_version"].as_str().map(str::to_owned)
        && updated["state"] != "disabled"
    {
        updated = client
            .wait_active(&team, &name, &version, Duration::from_secs(120))
            .await?;
    }
    let runs_on = match updated["events"].as_array() {
        Some(names) => names
            .iter()
            .filter_map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        None => "every event".to_owned(),
    };
    println!(
        "{team}/{name}: state {}, policy {}, config {}, runs on {runs_on}",
        updated["state"].as_str().unwrap_or("?"),
        updated["policy"].as_str().unwrap_or("?"),
        updated["config"].as_str().unwrap_or("?")
    );
    Ok(())
}
