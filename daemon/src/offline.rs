//! What tetherd does to a state directory while no daemon serves it:
//! `tetherd check` (and `--accept`), `tetherd restore`.

use std::path::Path;

use crate::audit::{Audit, Event};
use crate::config::Options;
use crate::store::{Store, StoreError};

/// A passphrase: typed on the terminal without echo, or one line of stdin.
fn read_passphrase() -> anyhow::Result<zeroize::Zeroizing<String>> {
    use std::io::{BufRead, IsTerminal, Write};
    let mut line = zeroize::Zeroizing::new(String::new());
    if std::io::stdin().is_terminal() {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")?;
        let mut writer = &tty;
        write!(writer, "passphrase: ")?;
        writer.flush()?;
        let saved = rustix::termios::tcgetattr(&tty)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &quiet)?;
        let read = std::io::BufReader::new(&tty).read_line(&mut line);
        let _ = rustix::termios::tcsetattr(&tty, rustix::termios::OptionalActions::Now, &saved);
        writeln!(writer)?;
        read?;
    } else {
        std::io::stdin().lock().read_line(&mut line)?;
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// Why an offline command could not open the store: with the daemon that
/// holds it named. A passphrase daemon's store asks for the passphrase.
fn opened(options: &Options) -> anyhow::Result<Store> {
    let state_dir = &options.state_dir;
    let wrapped = state_dir.join(crate::store::passphrase::WRAPPED_FILE);
    let store = if options.config.passphrase || wrapped.exists() {
        Store::open_locked(state_dir, crate::store::KeySource::Passphrase(wrapped)).and_then(
            |store| {
                let passphrase = read_passphrase().map_err(|e| StoreError::Key(e.to_string()))?;
                store.unseal_with_passphrase(passphrase.as_bytes())?;
                Ok(store)
            },
        )
    } else {
        Store::open(state_dir)
    };
    store.map_err(|error| match error {
        StoreError::Locked(dir) => anyhow::anyhow!(
            "tetherd is running on {}: stop it first (systemctl stop tetherd, or end \
             `tetherd --user`)",
            dir.display()
        ),
        other => anyhow::anyhow!("cannot open the store in {}: {other}", state_dir.display()),
    })
}

/// `tetherd check`: compares the store with its manifest and witness, as
/// the daemon does at start. With `accept`, a damaged store is taken as it
/// is, and what was lost is put on the audit trail. Whether the store is
/// (now) intact.
pub fn check(options: &Options, accept: bool, json: bool) -> anyhow::Result<bool> {
    let state_dir = &options.state_dir;
    let store = opened(options)?;
    let report = store.damage();
    let accepted = match (&report, accept) {
        (Some(_), true) => {
            let lost = store.accept_damage()?;
            record_acceptance(&store, options, lost.as_ref())?;
            true
        }
        _ => false,
    };
    let intact = report.is_none() || accepted;
    if json {
        let value = serde_json::json!({
            "state_dir": state_dir,
            "intact": report.is_none(),
            "accepted": accepted,
            "generation": store.generation(),
            "profiles": report.is_none().then(|| store.profile_count()),
            "damage": report,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(intact);
    }
    match (&report, accepted) {
        (None, _) => println!(
            "{}: intact, generation {}, {} profile(s), {} audit event(s)",
            state_dir.display(),
            store.generation(),
            store.profile_count(),
            store.audit_len()
        ),
        (Some(report), false) => {
            println!("{}: DAMAGED: {}", state_dir.display(), report.summary());
            println!(
                "tetherd serves none of its records. Restore a backup into an empty directory \
                 (tetherd restore --state-dir DIR FILE), or take the store as it is, losing \
                 what is listed: tetherd check --state-dir {} --accept",
                state_dir.display()
            );
        }
        (Some(report), true) => println!(
            "{}: accepted as it is, at generation {}; lost: {}",
            state_dir.display(),
            store.generation(),
            report.summary()
        ),
    }
    Ok(intact)
}

/// Puts an accepted loss on the trail, naming what was lost.
fn record_acceptance(
    store: &Store,
    options: &Options,
    lost: Option<&crate::store::integrity::Report>,
) -> anyhow::Result<()> {
    let Some(lost) = lost else { return Ok(()) };
    let audit = Audit::new(&options.state_dir, &options.config.audit);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(audit.unlock(store))?;
    let event = Event::daemon(crate::sys::getuid(), "store.accepted")
        .result("accepted")
        .detail("generation", lost.generation)
        .detail("missing", lost.missing.clone())
        .detail("unexpected", lost.unexpected.clone())
        .detail("audit_missing", lost.audit_missing)
        .detail("summary", lost.summary());
    runtime.block_on(audit.record(store, event))?;
    Ok(())
}

/// `tetherd restore`: a backup into a state directory that holds no store.
pub fn restore(
    options: &Options,
    backup: &Path,
    key_file: Option<std::path::PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    use crate::store::backup::{RestoreKey, restore};
    let wrapped = options
        .state_dir
        .join(crate::store::passphrase::WRAPPED_FILE);
    let key = match key_file {
        Some(path) => RestoreKey::File(path),
        None if wrapped.exists() => RestoreKey::Wrapped(read_passphrase()?),
        None => RestoreKey::Found,
    };
    let restored = restore(&options.state_dir, backup, key)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&restored)?);
    } else {
        println!(
            "restored generation {} into {}: {} records, {} audit events, sealed with the \
             master key of id {}; start tetherd",
            restored.generation,
            options.state_dir.display(),
            restored.records,
            restored.events,
            restored.key_id
        );
    }
    Ok(())
}
