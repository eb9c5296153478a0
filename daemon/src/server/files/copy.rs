//! `POST /v1/copy`: one file from one profile's server to another's (or
//! within one), relayed by the daemon: read on the source's grant, written
//! on the destination's, as an upload is (temporary file, rename, modes),
//! between any two protocols (SFTP and FTP).
//! Both profiles have the copy on record, before and after.

use ::http::StatusCode;
use tether_api::files::{CopyRequest, Uploaded};

use super::download::{Opened, open_to_read};
use super::ftp::FtpSource;
use super::upload::{Source, Wanted, write_target};
use super::{Remote, Session, event_name, ftp, remote};
use crate::access::Caller;
use crate::access::policy::Allowed;
use crate::access::policy::Op;
use crate::audit::Event;
use crate::error::Error;
use crate::remote::check_path;
use crate::server::App;
use crate::server::http::{Resp, json};
use crate::server::profiles::check_name;

pub async fn copy(app: &App, caller: &Caller, copy: CopyRequest) -> Result<Resp, Error> {
    let read = app.authorize(caller, &copy.from_profile, Op::Sftp { write: false })?;
    let write = app.authorize(caller, &copy.to_profile, Op::Sftp { write: true })?;
    check_name(&copy.from_profile)?;
    check_name(&copy.to_profile)?;
    check_path(&copy.from_path)?;
    check_path(&copy.to_path)?;
    let from = format!("{}:{}", copy.from_profile, copy.from_path);
    let to = format!("{}:{}", copy.to_profile, copy.to_path);
    let read_start = Event::new(caller, &event_name(app, &copy.from_profile, "copy.read"))
        .profile(&copy.from_profile)
        .detail("path", copy.from_path.as_str())
        .detail("to", to.as_str());
    let write_start = Event::new(caller, &event_name(app, &copy.to_profile, "copy.write"))
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
    read: &Allowed,
    write: &Allowed,
) -> Result<Uploaded, Error> {
    let wanted = |mode: Option<u32>, mtime: Option<u64>| Wanted {
        mode: mode.map(|m| m & 0o7777),
        mtime: mtime.filter(|_| copy.preserve),
        preserve: copy.preserve,
        inplace: copy.inplace,
    };
    match remote(app, caller, &copy.from_profile).await? {
        Remote::Sftp(Session {
            sftp: mut source,
            lease: _source_lease,
        }) => {
            let Opened {
                path,
                attrs,
                handle,
            } = open_to_read(&mut source, read, &copy.from_path).await?;
            let mut reader = source.reader(handle, &path, attrs.size);
            let wanted = wanted(attrs.permissions, attrs.mtime.map(u64::from));
            let written = write_to(
                app,
                caller,
                copy,
                write,
                &wanted,
                Source::Remote(&mut reader),
            )
            .await;
            source.close_unwaited(reader.into_handle());
            written
        }
        Remote::Ftp(mut lease) => {
            let ftp::Opened {
                download,
                info,
                path,
            } = ftp::open(lease.control(), read, &copy.from_path).await?;
            let wanted = wanted(Some(info.mode), Some(info.mtime));
            let source = FtpSource {
                control: lease.control(),
                download: Some(download),
                path,
            };
            write_to(app, caller, copy, write, &wanted, Source::Ftp(source)).await
        }
    }
}

/// Writes the copy's destination, on whichever protocol it speaks.
async fn write_to(
    app: &App,
    caller: &Caller,
    copy: &CopyRequest,
    write: &Allowed,
    wanted: &Wanted,
    source: Source<'_>,
) -> Result<Uploaded, Error> {
    match remote(app, caller, &copy.to_profile).await? {
        Remote::Sftp(Session {
            mut sftp,
            lease: _lease,
        }) => write_target(&mut sftp, &[], write, &copy.to_path, wanted, source).await,
        Remote::Ftp(mut lease) => {
            let to = ftp::Destination {
                app,
                caller,
                profile: &copy.to_profile,
            };
            ftp::write_target(to, &mut lease, write, &copy.to_path, wanted, source).await
        }
    }
}
