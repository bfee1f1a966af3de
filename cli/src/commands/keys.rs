//! `sluice keys create|list|revoke`.

use clap::Subcommand;
use sluice_cli::admin::key_line;

use super::AdminArgs;

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (shown once; only its hash is stored).
    Create {
        /// Team the key sends events for.
        #[arg(long)]
        team: String,
        /// `ingest` (send events) or `admin` (also manage the team's keys, plugins, schemas).
        #[arg(long, default_value = "ingest", value_parser = ["ingest", "admin"])]
        role: String,
        /// Free text to recognise the key by (e.g. "ios app").
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (a team admin sees only its own team).
    List {
        #[arg(long)]
        team: Option<String>,
    },
    /// Revoke a key by id; every gateway refuses it within a second.
    Revoke { key_id: String },
}

/// `sluice keys`: one call to the admin API, its answer printed.
pub async fn run(admin: AdminArgs, action: KeysAction) -> anyhow::Result<()> {
    let client = super::admin_client(admin)?;
    match action {
        KeysAction::Create { team, role, label } => {
            let created = client.create_key(&team, &role, &label).await?;
            println!("{}", created["key"].as_str().unwrap_or("?"));
            eprintln!(
                "created key {} for team {} (role {}); it is not shown again",
                created["key_id"].as_str().unwrap_or("?"),
                team,
                role
            );
        }
        KeysAction::List { team } => {
            for key in client.list_keys(team.as_deref()).await? {
                println!("{}", key_line(&key));
            }
        }
        KeysAction::Revoke { key_id } => {
            let revoked = client.revoke_key(&key_id).await?;
            println!("{}", key_line(&revoked));
        }
    }
    Ok(())
}
