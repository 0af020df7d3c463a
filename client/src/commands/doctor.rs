//! `pra doctor [--json]`: one line per check as it completes (or one JSON
//! report), a summary, exit status 0 only when no check failed.

use crate::doctor::{self, DoctorInput, KeyAccess, Report};
use crate::error::ClientResult;
use crate::home::Home;
use crate::tunnel::Timing;
use crate::{keystore, logging, passphrase};
use std::process::ExitCode;

/// `pra doctor`.
pub fn run(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let _ = logging::init(home);
    let report = run_checks(home, unlock_asking(home), |c| {
        if !json {
            crate::outln!("{}", c.line());
        }
    })?;
    if json {
        crate::outln!("{}", report.json());
    } else {
        crate::outln!("{}", report.summary());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Unlock with `PRA_PASSPHRASE` or by asking on the terminal.
pub(crate) fn unlock_asking(home: &Home) -> KeyAccess {
    let home = home.clone();
    KeyAccess::Unlock(Box::new(move || {
        let info = keystore::read_public(&home)?;
        let pass = passphrase::obtain("Passphrase for the PRA key: ", false)?;
        let key = keystore::load(&home, &pass)?;
        Ok((key, info.meta.user))
    }))
}

/// Run the doctor on a fresh runtime; every line also goes to the logs.
pub(crate) fn run_checks(
    home: &Home,
    key: KeyAccess,
    mut each: impl FnMut(&doctor::Check),
) -> ClientResult<Report> {
    let rt = crate::tunnel::setup::runtime()?;
    let input = DoctorInput {
        key,
        registry: None,
        timing: Timing::default(),
    };
    logging::user_line("doctor: started");
    let report = rt.block_on(doctor::run(home, input, |c| {
        logging::user_line(&format!("doctor: {}", c.line()));
        each(c);
    }));
    logging::user_line(&report.summary());
    Ok(report)
}
