//! `callerid doctor`.

use std::process::ExitCode;

/// Arguments of `callerid doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid doctor` is not implemented yet")
}
