//! One module per command group: its clap definitions next to the code that
//! runs them. The work itself is in the library (`sluice_cli`).

pub mod dlq;
pub mod keys;
pub mod plugin;
pub mod replay;
pub mod sample;
pub mod schema;
pub mod stats;
pub mod tail;

use sluice_cli::admin::AdminClient;

// The gateway's admin API, for the commands that call it (a comment, not a
// doc comment: clap would take a doc comment for the command's about).
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Gateway base URL (the admin API is served under /admin/v1).
    #[arg(
        long,
        env = "SLUICE_ADMIN_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    admin_url: String,
    /// Operator token (`admin.token`) or a team admin key.
    #[arg(
        long,
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
}

fn admin_client(admin: AdminArgs) -> anyhow::Result<AdminClient> {
    let token = admin.token.ok_or_else(|| {
        anyhow::anyhow!("an admin token is required: --token or SLUICE_ADMIN_TOKEN")
    })?;
    Ok(AdminClient::new(&admin.admin_url, &token))
}
