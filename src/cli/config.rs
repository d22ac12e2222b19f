//! `markwatch config ...`

use std::process::ExitCode;

use clap::Subcommand;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment, flags), secrets redacted
    Check,
}

pub fn run(cmd: ConfigCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check => {
            println!("# effective markwatch configuration (secrets redacted)");
            print!("{}", ctx.config.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
