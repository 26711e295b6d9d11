//! `callerid gate`.

use std::process::ExitCode;

/// Arguments of `callerid gate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid gate` is not implemented yet")
}
