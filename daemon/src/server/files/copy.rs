//! `POST /v1/copy`: one file from one profile's server to another's (or
//! within one), relayed by the daemon: read on the source's grant, written
//! on the destination's, as an upload is (temporary file, rename, modes).
//! Both profiles have the copy on record, before and after.

use ::http::StatusCode;
use tether_api::files::{CopyRequest, FileKind, Uploaded};

use super::upload::{Source, Wanted, write_target};
use super::{Session, session};
use crate::access::Caller;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::server::App;
use crate::server::confine::confine;
use crate::server::http::{Resp, json};
use crate::server::profiles::check_name;
use crate::ssh::sftp::{self, RemoteError, RemoteKind, check_path};

pub async fn copy(app: &App, caller: &Caller, copy: CopyRequest) -> Result<Resp, Error> {
    let read = app.authorize(caller, &copy.from_profile, Op::Sftp { write: false })?;
    let write = app.authorize(caller, &copy.to_profile, Op::Sftp { write: true })?;
    check_name(&copy.from_profile)?;
    check_name(&copy.to_profile)?;
    check_path(&copy.from_path)?;
    check_path(&copy.to_path)?;
    let from = format!("{}:{}", copy.from_profile, copy.from_path);
    let to = format!("{}:{}", copy.to_profile, copy.to_path);
    let read_start = Event::new(caller, "sftp.copy.read")
        .profile(&copy.from_profile)
        .detail("path", copy.from_path.as_str())
        .detail("to", to.as_str());
    let write_start = Event::new(caller, "sftp.copy.write")
        .profile(&copy.to_profile)
        .detail("path", copy.to_path.as_str())
        .detail("from", from.as_str());
    let (read_end, write_end) = (
        read_start.end(String::new()),
        write_start.end(String::new()),
    );
    app.record(read_start).await?;
    app.record(write_start).await?;
    let copied = relay(app, caller, &copy, &read, &write).await;
    for end in [read_end, write_end] {
        let end = match &copied {
            Ok(done) => end
                .result("ok")
                .detail("bytes", done.bytes)
                .detail("sha256", done.sha256.as_str()),
            Err(error) => end.result(error.code().as_str()),
        };
        app.record_after(end).await;
    }
    copied.map(|done| json(StatusCode::OK, &done))
}

async fn relay(
    app: &App,
    caller: &Caller,
    copy: &CopyRequest,
    read: &crate::access::policy::Allowed,
    write: &crate::access::policy::Allowed,
) -> Result<Uploaded, Error> {
    let Session {
        sftp: source,
        lease: _source_lease,
    } = session(app, caller, &copy.from_profile).await?;
    let path = source.expand(&copy.from_path).await?;
    let path = confine(&source, read, &path).await?;
    let attrs = source.stat_attrs(&path).await?;
    if sftp::kind_of(&attrs) == FileKind::Dir {
        return Err(RemoteError::new(
            RemoteKind::Failed,
            &path,
            "is a directory (copy trees with cp -r)",
        )
        .into());
    }
    let handle = source.open_read(&path).await?;
    let mut reader = source.reader(handle, &path);
    let Session {
        sftp: target,
        lease: _target_lease,
    } = session(app, caller, &copy.to_profile).await?;
    let wanted = Wanted {
        mode: attrs.permissions.map(|m| m & 0o7777),
        mtime: attrs.mtime.map(u64::from).filter(|_| copy.preserve),
        preserve: copy.preserve,
        inplace: copy.inplace,
    };
    let written = write_target(
        &target,
        write,
        &copy.to_path,
        &wanted,
        Source::Remote(&mut reader),
    )
    .await;
    let _ = source.close(reader.into_handle(), &path, false).await;
    written
}
