//! The manual pages: tether(1) and one page per command (`tether-exec(1)`,
//! `tether-profile-add(1)`, ...), each from the clap definitions (name,
//! synopsis, description, options, commands) plus the sections a manual
//! page is expected to have: EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and
//! SEE ALSO. `tether man --out-dir DIR` writes them all; the committed
//! copies under `man/` are checked current by a test.

use std::io::Write;
use std::path::Path;

use clap_mangen::Man;
use tether_api::error::ErrorCode;

/// Text for roff: backslashes and line-leading dots kept literal.
fn roff(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn section(out: &mut Vec<u8>, title: &str, body: &str) {
    let _ = writeln!(out, ".SH {title}\n{body}");
}

fn exit_status(page: &str) -> String {
    let mut text = String::new();
    let remote = matches!(page, "tether-exec" | "tether-run" | "tether-shell");
    if remote {
        text.push_str(
            ".TP\nthe remote command's exit status\nas the server reports it; \\fB128+N\\fR when \
             a signal N ended it; \\fB124\\fR when \\-\\-timeout ended it; \\fB130\\fR after a \
             second Ctrl\\-C\n",
        );
    } else {
        text.push_str(".TP\n\\fB0\\fR\nsuccess\n");
    }
    text.push_str(
        ".TP\n\\fB255\\fR\na failure of tether's own, printed on stderr as \
         \\fBtether: error[\\fICODE\\fB]: \\fIMESSAGE\\fR; scripts branch on CODE\n",
    );
    if page == "tether" {
        text.push_str(".PP\nThe codes:\n");
        for code in ErrorCode::ALL {
            text.push_str(&format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                code.as_str(),
                roff(code.describe())
            ));
        }
        for (code, what) in [
            ("usage", "bad arguments or input"),
            ("io_error", "a local file could not be read or written"),
            (
                "daemon_unavailable",
                "no daemon at the socket (the message says how to start one), or it ended a session",
            ),
            (
                "untrusted_socket",
                "the socket's directory is not yours alone, or its listener is neither root nor you",
            ),
            ("protocol_error", "an answer the CLI did not understand"),
            ("host_key_refused", "you did not trust the host key"),
            ("interrupted", "cp ended by Ctrl\\-C or SIGTERM"),
        ] {
            text.push_str(&format!(".TP\n\\fB{code}\\fR\n{what}\n"));
        }
    }
    text
}

const ENVIRONMENT: &str = ".TP\n\\fBTETHER_SOCKET\\fR\nthe daemon's socket, as \\-\\-socket \
gives it\n.TP\n\\fBXDG_RUNTIME_DIR\\fR\nwhere the \\fBtetherd \\-\\-user\\fR socket is \
(\\fI$XDG_RUNTIME_DIR/tether/tether.sock\\fR); without it, \\fI$TMPDIR/tether\\-UID\\fR, which \
must be yours alone\n.TP\n\\fBCOMPLETE\\fR\nset by the shell completion scripts to ask tether \
for candidates\n";

const FILES: &str = ".TP\n\\fI/run/tether/tether.sock\\fR\nthe system daemon's socket (group \
\\fBtether\\fR)\n.TP\n\\fI$XDG_RUNTIME_DIR/tether/tether.sock\\fR\nthe \\fBtetherd \\-\\-user\\fR \
socket\n.TP\n\\fI/etc/tether/tetherd.toml\\fR\nthe system daemon's configuration\n";

/// Examples by page; a page without its own has its parent's commands.
fn examples(page: &str) -> &'static str {
    match page {
        "tether" => {
            "tether profile add web1 \\-\\-host web1.example.net \\-\\-user deploy \\-\\-key\\-file \
             ~/.ssh/id_ed25519\n.br\ntether exec web1 uptime\n.br\ntether cp \\-r ./site \
             web1:/srv/www\n.br\ntether shell web1\n"
        }
        "tether-exec" => {
            "tether exec web1 uname \\-a\n.br\ntether exec web1 'journalctl \\-u nginx | tail \
             \\-5'\n.br\ntether exec \\-\\-timeout 60 db1 \\-\\- pg_dump app > app.sql\n.br\necho \
             data | tether exec web1 \\-\\- tee /tmp/data\n"
        }
        "tether-cp" => {
            "tether cp ./report.pdf web1:/srv/files/\n.br\ntether cp \\-r web1:/var/log/nginx \
             ./logs\n.br\ntether cp 'web1:/var/log/*.gz' .\n.br\ntether cp web1:/etc/hosts \
             db1:/tmp/hosts\n.br\npg_dump app | tether cp \\- db1:/backup/app.sql\n"
        }
        "tether-files" => {
            "tether files web1 ls \\-l /srv\n.br\ntether files web1 mkdir \\-p /srv/new/dir\n.br\n\
             tether files web1 mv /srv/a /srv/b\n"
        }
        "tether-shell" => "tether shell web1\n.br\ntether shell web1 \\-\\- htop\n",
        "tether-run" => "tether run db1 backup db=app\n",
        "tether-login" => "tether login\n",
        "tether-audit" => {
            "tether audit \\-\\-profile db1 \\-\\-since 12h\n.br\ntether audit verify\n"
        }
        page if page.starts_with("tether-profile") => {
            "tether profile add web1 \\-\\-host web1.example.net \\-\\-user deploy \\-\\-key\\-file \
             ~/.ssh/id_ed25519\n.br\ntether profile list\n.br\ntether profile trust web1\n"
        }
        page if page.starts_with("tether-grant") => {
            "tether grant add web1 \\-\\-user alice \\-\\-role operator \\-\\-shell\n.br\n\
             tether grant list web1\n"
        }
        page if page.starts_with("tether-action") => {
            "tether action add db1 backup \\-\\- pg_dump \\-\\-dbname={db:[a\\-z_]+}\n.br\n\
             tether action list db1\n"
        }
        page if page.starts_with("tether-mfa") => {
            "tether mfa enroll\n.br\ntether mfa invite alice\n"
        }
        page if page.starts_with("tether-session") => "tether session list\n",
        _ => "tether status\n",
    }
}

fn see_also(page: &str, parent: Option<&str>) -> String {
    let mut refs = vec!["tetherd(8)".to_owned()];
    if page != "tether" {
        refs.insert(0, "tether(1)".to_owned());
    }
    if let Some(parent) = parent.filter(|p| *p != "tether") {
        refs.insert(1, format!("{parent}(1)"));
    }
    refs.extend(["ssh(1)", "scp(1)", "sftp(1)"].map(str::to_owned));
    roff(&refs.join(", "))
}

/// One command's page, its subcommands' pages after it (recursively).
fn render_all(cmd: &clap::Command, parent: Option<&str>, pages: &mut Vec<(String, Vec<u8>)>) {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let man = Man::new(cmd.clone()).title(name.to_uppercase());
    let mut out = Vec::new();
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut out);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        let _ = man.render_subcommands_section(&mut out);
    }
    section(&mut out, "EXIT STATUS", &exit_status(&name));
    section(&mut out, "ENVIRONMENT", ENVIRONMENT);
    section(&mut out, "FILES", FILES);
    section(&mut out, "EXAMPLES", examples(&name));
    section(&mut out, "SEE ALSO", &see_also(&name, parent));
    let _ = man.render_version_section(&mut out);
    pages.push((format!("{name}.1"), out));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_all(sub, Some(&name), pages);
    }
}

/// Every page of `cmd` (built), as (file name, roff).
pub fn pages(cmd: clap::Command) -> Vec<(String, Vec<u8>)> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    render_all(&cmd, None, &mut pages);
    pages
}

/// Writes every page into `dir`.
pub fn write_all(cmd: clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let pages = pages(cmd);
    for (file, text) in &pages {
        std::fs::write(dir.join(file), text)?;
    }
    Ok(pages.len())
}
