//! Path prefixes: where a path really is on the server (SFTP's or FTP's),
//! and whether a grant allows it.

use crate::access::policy::{Allowed, within};
use crate::error::Error;
use crate::remote::{MAX_DEPTH, RemoteKind, Resolve};

/// Where `path` is on the server with `..` and symlinks resolved, checked
/// against the grant's path prefixes; the path to operate on.
///
/// Both the entry's location (its resolved parent plus its name) and, when
/// it exists, what it finally points to must be under a prefix: a symlink
/// inside the tree that points out of it can be neither read nor written
/// through. The operation then uses the resolved location, so no symlink in
/// a parent can redirect it after the check. (A symlink planted between the
/// check and the operation by someone else with write access there is not
/// caught; see ARCHITECTURE.md.)
pub async fn confine<R: Resolve>(
    server: &mut R,
    allowed: &Allowed,
    path: &str,
) -> Result<String, Error> {
    let Some(prefixes) = &allowed.paths else {
        return Ok(path.to_owned());
    };
    let refused = |resolved: &str| {
        Error::PathNotAllowed(format!(
            "{path} (on the server: {resolved}) is outside the paths your grant allows: {}",
            prefixes.join(", ")
        ))
    };
    let trimmed = path.trim_end_matches('/');
    let (parent, base) = match trimmed.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((parent, base)) => (parent, base),
        // `/` (or `//`): the root, never the login directory.
        None if trimmed.is_empty() && !path.is_empty() => ("/", ""),
        None => (".", path),
    };
    let location = if trimmed.is_empty() && !path.is_empty() {
        "/".to_owned()
    } else if base.is_empty() || base == "." || base == ".." {
        server.realpath(path).await?
    } else {
        let parent = resolve_existing(server, parent).await?;
        format!("{}/{base}", parent.trim_end_matches('/'))
    };
    if !within(prefixes, &location) {
        return Err(refused(&location));
    }
    if let Ok(target) = server.realpath(&location).await {
        if !within(prefixes, &target) {
            return Err(refused(&target));
        }
    }
    Ok(location)
}

/// `dir` resolved by the server; where its last components do not exist yet
/// (`mkdir -p`), its deepest existing ancestor resolved, with the missing
/// names appended (never `.` or `..`).
async fn resolve_existing<R: Resolve>(server: &mut R, dir: &str) -> Result<String, Error> {
    let mut head = dir.to_owned();
    let mut missing: Vec<String> = Vec::new();
    loop {
        match server.realpath(&head).await {
            Ok(real) => {
                let mut out = real.trim_end_matches('/').to_owned();
                for name in missing.iter().rev() {
                    out.push('/');
                    out.push_str(name);
                }
                return Ok(if out.is_empty() { "/".into() } else { out });
            }
            Err(error) => {
                let (parent, base) = match head.trim_end_matches('/').rsplit_once('/') {
                    Some(("", base)) => ("/".to_owned(), base.to_owned()),
                    Some((parent, base)) => (parent.to_owned(), base.to_owned()),
                    None => (".".to_owned(), head.clone()),
                };
                let gives_up = error.kind != RemoteKind::NoSuchFile
                    || base.is_empty()
                    || base == "."
                    || base == ".."
                    || missing.len() >= MAX_DEPTH;
                if gives_up {
                    return Err(error.into());
                }
                missing.push(base);
                head = parent;
            }
        }
    }
}
