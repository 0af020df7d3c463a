//! One module per `pra-registry` command group; [`run`] dispatches the
//! parsed [`Cli`]. Commands print to a writer so tests can read them; each
//! failure is one [`Failure`] line.

use crate::cli::{Cli, Command, HostkeyArgs};
use crate::config::Config;
use crate::failure::{Failure, output_failure};
use crate::format::table;
use crate::model::Actor;
use pra_proto::codes::Code;
use std::io::Write;

mod audit;
mod invite;
mod key;
mod rule;
mod serve;
mod session;
mod token;
mod user;

/// `cli:<OS user>`.
pub fn cli_actor() -> Actor {
    let name: String = whoami::username()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '$'))
        .take(64)
        .collect();
    Actor::Cli(if name.is_empty() {
        "unknown".into()
    } else {
        name
    })
}

/// Run a command; output goes to `out`, notes to `err`.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Failure> {
    // Generated from the command definitions alone: no database needed.
    if let Command::Completions { .. } | Command::Manpage = &cli.command {
        return generated(&cli.command, out);
    }
    let config = Config::from_cli(&cli)?;
    if let Command::Hostkey(args) = &cli.command {
        return hostkey_command(&cli.data, args, out);
    }
    let store = config.open_store()?;
    let w = |r: std::io::Result<()>| r.map_err(|e| output_failure(&e));
    let actor = cli_actor();
    match cli.command {
        Command::Serve(args) => serve::serve_command(store, &cli.data, args, out),
        Command::User(c) => w(user::user(store.as_ref(), c, &actor, out)?),
        Command::Key(c) => w(key::key(store.as_ref(), c, &actor, out)?),
        Command::Rule(c) => w(rule::rule(store.as_ref(), c, &actor, out)?),
        Command::Audit(a) => w(audit::audit(store.as_ref(), a, out)?),
        Command::Session(c) => w(session::session(store.as_ref(), c, &actor, out)?),
        Command::Hostkey(args) => hostkey_command(&cli.data, &args, out),
        Command::Token(c) => w(token::token(store.as_ref(), c, &actor, out, err)?),
        Command::Invite(c) => w(invite::invite(
            store.as_ref(),
            &cli.data,
            c,
            &actor,
            out,
            err,
        )?),
        Command::Completions { .. } | Command::Manpage => generated(&cli.command, out),
    }
}

/// `completions SHELL` / `manpage`: from the clap definitions of [`Cli`]
/// (installer/build.sh ships them in the package).
fn generated(command: &Command, out: &mut dyn Write) -> Result<(), Failure> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "pra-registry", &mut buf);
        }
        _ => clap_mangen::Man::new(Cli::command())
            .render(&mut buf)
            .map_err(|e| {
                Failure::new(
                    Code::RegistryInvalid,
                    format!("cannot render the man page: {e}"),
                    "report this",
                )
            })?,
    }
    out.write_all(&buf)
        .and_then(|()| out.flush())
        .map_err(|e| output_failure(&e))
}

/// `hostkey`: the gateway's `SHA256:` fingerprint (and public key line).
fn hostkey_command(
    data: &std::path::Path,
    args: &HostkeyArgs,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let key = crate::gateway::hostkey::load_or_create(data)?;
    let mut text = format!("{}\n", key.fingerprint());
    if args.public {
        text.push_str(&key.openssh_public());
        text.push('\n');
    }
    out.write_all(text.as_bytes())
        .map_err(|e| output_failure(&e))
}

/// Where a command prints.
pub(crate) type Out<'a> = &'a mut dyn Write;

/// What a command returns: its failure, or whether its output could be
/// written (`run` turns a write error into a failure).
pub(crate) type Done = Result<std::io::Result<()>, Failure>;

/// Print `value` as pretty JSON (the `--json` of the list commands).
pub(crate) fn json(out: Out<'_>, value: &impl serde::Serialize) -> Done {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        Failure::new(
            Code::RegistryDatabase,
            format!("cannot render JSON: {e}"),
            "report this",
        )
    })?;
    Ok(writeln!(out, "{text}"))
}

/// How a `… list` command prints its records.
pub(crate) struct Listing<'a> {
    /// `--json`: one JSON document instead of a table.
    pub(crate) json: bool,
    /// The line printed when there are no records.
    pub(crate) empty: &'a str,
    /// The table's column headers.
    pub(crate) headers: &'a [&'a str],
}

impl Listing<'_> {
    /// Print `items`: as JSON of `wrap(items)`, as the empty line, or as a
    /// table with one `row` per item.
    pub(crate) fn print<T, W: serde::Serialize>(
        &self,
        out: Out<'_>,
        items: Vec<T>,
        wrap: impl FnOnce(Vec<T>) -> W,
        row: impl FnMut(&T) -> Vec<String>,
    ) -> Done {
        if self.json {
            return json(out, &wrap(items));
        }
        if items.is_empty() {
            return Ok(writeln!(out, "{}", self.empty));
        }
        let rows = items.iter().map(row).collect();
        Ok(out.write_all(table(self.headers, rows).as_bytes()))
    }
}
