//! `pra`: parse arguments, run, print the one error line, map it to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    pra_proto::rt::tune_allocator();
    let cli = match pra_client::cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match pra_client::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", err.line());
            ExitCode::FAILURE
        }
    }
}
