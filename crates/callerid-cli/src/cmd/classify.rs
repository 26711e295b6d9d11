//! `callerid classify`.

use std::process::ExitCode;

/// Arguments of `callerid classify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid classify` is not implemented yet")
}
