//! `sluice schema register|check`, for pull-request checks.

use std::path::PathBuf;

use clap::Subcommand;

use super::AdminArgs;

#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Register a JSON Schema file as the next version of TEAM/EVENT.
    ///
    /// Needs the team's admin key (or the operator token).
    Register {
        /// TEAM/EVENT, e.g. `acme/Signup Completed`.
        subject: String,
        /// The JSON Schema file (it describes the event's `properties`).
        #[arg(long)]
        file: PathBuf,
    },
    /// Check a JSON Schema file against TEAM/EVENT's versions without
    /// registering it (any key of the team will do).
    Check {
        /// TEAM/EVENT, e.g. `acme/Signup Completed`.
        subject: String,
        /// The JSON Schema file (it describes the event's `properties`).
        #[arg(long)]
        file: PathBuf,
    },
}

/// Exit codes for pull-request checks: 0 accepted, 1 refused with the
/// reasons printed, 2 usage or connection error.
pub async fn run(admin: AdminArgs, action: SchemaAction) -> std::process::ExitCode {
    let result = async {
        let token = admin
            .token
            .ok_or_else(|| anyhow::anyhow!("a token is required: --token or SLUICE_ADMIN_TOKEN"))?;
        let client = sluice_cli::schema::SchemaClient::new(&admin.admin_url, &token)?;
        let (subject, file, register) = match &action {
            SchemaAction::Register { subject, file } => (subject, file, true),
            SchemaAction::Check { subject, file } => (subject, file, false),
        };
        let (team, event) = sluice_cli::schema::parse_subject(subject)?;
        let text = sluice_cli::schema::read_schema(file)?;
        let decision = if register {
            client.register(team, event, &text).await?
        } else {
            client.check(team, event, &text).await?
        };
        anyhow::Ok((subject.clone(), file.clone(), register, decision))
    }
    .await;
    match result {
        Ok((subject, file, register, decision)) => {
            match &decision {
                sluice_cli::schema::Decision::Accepted { version } if register => println!(
                    "registered {} as {subject} version {}",
                    file.display(),
                    version.map_or("?".to_owned(), |v| v.to_string())
                ),
                sluice_cli::schema::Decision::Accepted { .. } => {
                    println!("{} is compatible with {subject}", file.display());
                }
                sluice_cli::schema::Decision::Refused { reasons } => {
                    println!("{} is refused for {subject}:", file.display());
                    for reason in reasons {
                        println!("  - {reason}");
                    }
                }
            }
            std::process::ExitCode::from(decision.exit_code())
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
