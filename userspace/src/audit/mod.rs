//! `flowmeter audit`: was this host compromised, what is exposed, and (with `--watch`)
//! which of it is talking to the network now.
//!
//! The checks follow seed 004's runbook (rc.local, crontabs, ld.so.preload, huge pages)
//! and its hardening (sshd, accounts, public database ports), plus systemd units and
//! the running processes. Each reads paths under a `Root` (`/`, or a mounted disk or
//! fixture tree); processes and sockets are read only on the running system. Every check
//! adds [`Finding`]s, each with an id, a [`Severity`], the evidence and what to do; the
//! [`Report`] orders them, renders them for people ([`render`]) or scripts ([`to_json`],
//! `docs/audit.md`), and gives the exit status.
//!
//! One module per family of checks: `startup` (rc.local), `cron`, `systemd` — the
//! persistence points, whose command lines `shell` reads and `persistence` judges —
//! then `preload`, `hugepages`, `sshd`, `accounts`, `processes`, `sockets`.
//! `traffic` ties findings to what `--watch` metered. What counts as a temporary
//! directory, a kernel thread's name or a suspicious process is the verdict rules'
//! (`signs`), so that the audit and the console's verdicts agree; in turn the audit
//! hands the verdicts the commands it flagged ([`persistence()`](fn@persistence)).

mod accounts;
mod advice;
pub mod allow;
mod cron;
pub mod finding;
#[cfg(test)]
mod fixture;
mod hugepages;
mod persistence;
mod preload;
mod processes;
mod render;
mod report;
mod root;
mod schema;
mod shell;
mod signs;
mod sockets;
mod sshd;
mod startup;
mod systemd;
mod traffic;
mod users;

use std::path::Path;

use crate::enrich::{
    sockets::{ProcPaths, listeners},
    verdict::{Persistence, Rules},
};

pub use allow::{AllowEntry, AllowError};
pub use finding::{Finding, ProcessRef, Severity, Traffic};
pub use render::render;
pub use report::{EXIT_CLEAN, EXIT_FOUND, Report};
pub use root::RootError;
pub use schema::to_json;
pub use traffic::Watched;

use finding::Findings;
use persistence::Launch;
use root::Root;
use users::Users;

/// Where the running system keeps its processes.
const PROC: &str = "/proc";

/// Audits the tree at `dir` (`/` for the running system). `rules` are the verdict rules
/// (`--rules` extends them: more cloud agents, known huge-page users); `allowed` names
/// the processes whose findings are allowed (`--allow`). Fails only if `dir` is not a
/// directory: anything unreadable inside is a finding or a note.
pub fn audit(dir: &Path, rules: &Rules, allowed: &[AllowEntry]) -> Result<Report, RootError> {
    let root = Root::open(dir)?;
    let mut out = Findings::default();
    let launches = launches(&root, &mut out);
    out.found
        .extend(launches.iter().filter_map(Launch::finding));
    let users = Users::read(&root, &mut out);
    cron::check_owners(&root, users.as_ref(), &mut out);
    preload::check(&root, &mut out);
    sshd::check(&root, &mut out);
    accounts::check(&root, users.as_ref(), &mut out);
    if root.is_live() {
        let flagged = persistence::flagged(&launches);
        let running = processes::scan(Path::new(PROC), rules, &flagged);
        hugepages::check(&root, Some(&running), &mut out);
        processes::check(&running, allowed, &mut out);
        sockets::check(&listeners(&ProcPaths::system()), &mut out);
    } else {
        hugepages::check(&root, None, &mut out);
        out.note(
            "live-only checks skipped (--root is not /): running processes, listening \
             sockets and the processes that map huge pages belong to the running system",
        );
    }
    Ok(Report::new(dir, root.is_live(), out))
}

/// The commands that the persistence points under `root` start (rc.local, crontabs,
/// cron scripts, systemd units) and that the audit flags (medium or worse), for the
/// verdict rules: flows of processes launched from them are judged suspicious. Empty if
/// `root` cannot be read.
pub fn persistence(root: &Path) -> Persistence {
    match Root::open(root) {
        Ok(root) => persistence::flagged(&launches(&root, &mut Findings::default())),
        Err(_) => Persistence::new(),
    }
}

/// Every command at a persistence point.
fn launches(root: &Root, out: &mut Findings) -> Vec<Launch> {
    let mut launches = startup::scan(root, out);
    launches.extend(cron::scan(root, out));
    launches.extend(systemd::scan(root, out));
    launches
}
