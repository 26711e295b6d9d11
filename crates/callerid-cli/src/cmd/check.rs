//! `callerid check`.

use std::process::ExitCode;

/// Arguments of `callerid check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid check` is not implemented yet")
}
