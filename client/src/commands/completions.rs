//! `pra completions SHELL` and `pra manpage`: the shell completion script
//! and the man page, generated from the clap definitions of [`Cli`], so
//! they never disagree with the program. The packages ship them
//! (installer/build.sh); users may also install them by hand, e.g.
//! `pra completions bash > ~/.local/share/bash-completion/completions/pra`.

use crate::cli::Cli;
use crate::error::{ClientError, ClientResult};
use clap::CommandFactory;
use pra_proto::codes::Code;
use std::io::Write;
use std::process::ExitCode;

/// `pra completions SHELL`.
pub(crate) fn completions(shell: clap_complete::Shell) -> ClientResult<ExitCode> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pra", &mut buf);
    emit(&buf)
}

/// `pra manpage`: `pra.1` in roff.
pub(crate) fn manpage() -> ClientResult<ExitCode> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| ClientError::new(Code::HomeUnwritable, format!("cannot render: {e}")))?;
    emit(&buf)
}

fn emit(bytes: &[u8]) -> ClientResult<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            crate::out::quiet_exit_on_broken_pipe(&e);
            ClientError::new(Code::HomeUnwritable, format!("cannot write to stdout: {e}"))
        })?;
    Ok(ExitCode::SUCCESS)
}
