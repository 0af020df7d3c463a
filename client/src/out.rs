//! Standard output for the commands: [`outln!`](crate::outln) writes one
//! line; when the reader went away (`pra doctor | head -3`, `less` quit)
//! the process ends quietly with status 0, like every Unix tool, instead of
//! panicking (`failed printing to stdout`) or printing an error.

use std::io::{self, Write};

/// Write `text` and a newline to stdout; a closed pipe ends the process
/// quietly (see [`quiet_exit_on_broken_pipe`]). Other write errors are
/// ignored: there is nowhere left to report them.
pub fn line(text: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let r = writeln!(out, "{text}").and_then(|()| out.flush());
    if let Err(e) = r {
        quiet_exit_on_broken_pipe(&e);
    }
}

/// End the process with status 0 when `e` says the reader closed the pipe.
pub(crate) fn quiet_exit_on_broken_pipe(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// `println!` for command output: quiet exit when stdout's reader is gone.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
