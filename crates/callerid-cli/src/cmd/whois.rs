//! `callerid whois`.

use std::process::ExitCode;

/// Arguments of `callerid whois`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`callerid whois` is not implemented yet")
}
