//! `callerid whoami`.

use std::process::ExitCode;

/// Arguments of `callerid whoami`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid whoami` is not implemented yet")
}
