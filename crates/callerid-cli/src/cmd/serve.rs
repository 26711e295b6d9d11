//! `callerid serve`.

use std::process::ExitCode;

/// Arguments of `callerid serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid serve` is not implemented yet")
}
