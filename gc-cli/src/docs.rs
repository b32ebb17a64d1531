//! `gc-audit completions SHELL` and `gc-audit man [SUBCOMMAND]`: shell completion scripts and
//! man pages generated from the clap definition at run time.
//!
//! Generated from the same [`Cli`] the parser uses, they cannot drift from the flags, and a
//! packager needs no build step: `gc-audit completions bash > …/gc-audit` and
//! `gc-audit man > …/man1/gc-audit.1`, `gc-audit man scan > …/man1/gc-audit-scan.1`.

use crate::args::Cli;
use crate::Outcome;
use anyhow::{bail, Result};
use clap::CommandFactory;

/// The completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut command = Cli::command();
    let mut stdout = Vec::new();
    clap_complete::generate(shell, &mut command, "gc-audit", &mut stdout);
    Outcome { code: 0, stdout }
}

/// The man page of gc-audit, or of `subcommand` (`gc-audit-scan(1)`).
pub(crate) fn man(subcommand: Option<&str>) -> Result<Outcome> {
    let mut command = Cli::command();
    command.build();
    let man = match subcommand {
        None => clap_mangen::Man::new(command),
        Some(name) => {
            let names: Vec<String> = command
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let Some(sub) = command.find_subcommand(name).cloned() else {
                bail!(
                    "man {name:?}: no such subcommand (one of {})",
                    names.join(", ")
                );
            };
            let title = format!("gc-audit-{}", sub.get_name());
            clap_mangen::Man::new(sub).title(title)
        }
    };
    let mut stdout = Vec::new();
    man.render(&mut stdout)?;
    Ok(Outcome { code: 0, stdout })
}
