//! `callerid explain`.

use std::process::ExitCode;

/// Arguments of `callerid explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid explain` is not implemented yet")
}
