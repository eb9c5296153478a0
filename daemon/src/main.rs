//! `tetherd`: flags, logging, signals; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tether_api::types::Mode;
use tetherd::config::{Config, Options};
use tracing_subscriber::EnvFilter;

/// tetherd keeps SSH credentials sealed and lends live SSH connections to
/// local users and scripts over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "tetherd", version, about, long_about = None)]
struct Args {
    /// Run unprivileged for the current user: socket in
    /// $XDG_RUNTIME_DIR/tether/, state in $XDG_DATA_HOME/tether/.
    #[arg(long)]
    user: bool,
    /// TOML configuration file [default: /etc/tether/tetherd.toml, or with
    /// --user $XDG_CONFIG_HOME/tether/tetherd.toml, when it exists].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen on this socket instead of the mode's default.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Keep the store in this directory instead of the mode's default.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Log more: -v for what the daemon does (info), -vv for debugging. On a
    /// terminal only warnings show by default; under systemd or with
    /// --log-file, the configuration's `log` level (info) applies.
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Append the log to this file instead of stderr.
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// Keep the master key only wrapped by a passphrase (as `passphrase =
    /// true` in the configuration): start sealed; `tether unseal` opens
    /// the store (the first one sets the passphrase)
    #[arg(long)]
    passphrase: bool,
    #[command(subcommand)]
    command: Option<DaemonCommand>,
}

#[derive(Debug, Subcommand)]
enum DaemonCommand {
    /// Check a configuration file and exit: non-zero, with the line of the
    /// error, when it does not load [default: the mode's configuration file]
    CheckConfig {
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
    /// Check the store against its manifest, as tetherd does at start, and
    /// exit: 0 when intact, 1 when damaged (what is missing is listed).
    /// Stop tetherd first
    Check {
        /// Take a damaged store as it is: what is listed is lost for good,
        /// the rest is served again, and the loss goes on the audit trail
        #[arg(long)]
        accept: bool,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup (`tether backup`) into a state directory that holds
    /// no store, after checking all of it; a wrong key or a damaged backup
    /// writes nothing
    Restore {
        /// The backup file
        #[arg(value_name = "FILE")]
        backup: PathBuf,
        /// The master key the backup was sealed with [default: the state
        /// directory's master.key, or the systemd credential]; installed as
        /// the state directory's master.key
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Print the tetherd(8) manual page (roff) to stdout
    #[command(hide = true)]
    Man,
}

/// The sections of tetherd(8) that clap does not know.
const MANUAL_SECTIONS: &str = r".SH EXIT STATUS
.TP
\fB0\fR
stopped by SIGTERM or SIGINT after draining running requests, or a
subcommand that succeeded
.TP
\fB1\fR
it could not start (the message says why: a socket in use, a directory that
is not its own, a store it cannot open, a wrong master key), or \fBcheck\fR
found the store damaged
.SH ENVIRONMENT
.TP
\fBTETHER_LOG\fR
a log filter (\fBtetherd=debug\fR), over the configuration's \fBlog\fR
.TP
\fBCREDENTIALS_DIRECTORY\fR
where systemd puts \fBtether\-master\-key\fR (LoadCredentialEncrypted=)
.TP
\fBLISTEN_FDS\fR, \fBLISTEN_PID\fR
a socket passed by systemd socket activation
.TP
\fBXDG_RUNTIME_DIR\fR, \fBXDG_DATA_HOME\fR, \fBXDG_CONFIG_HOME\fR
with \-\-user: the socket, state and configuration directories
.SH FILES
.TP
\fI/run/tether/tether.sock\fR
the system socket (0660, group \fBtether\fR)
.TP
\fI/var/lib/tether\fR
the sealed store, and \fImaster.key\fR when no systemd credential is given
.TP
\fI/etc/tether/tetherd.toml\fR
the configuration (\fI~/.config/tether/tetherd.toml\fR with \-\-user)
.SH EXAMPLES
systemctl enable \-\-now tetherd.socket
.br
tetherd \-\-user &
.br
tetherd check\-config /etc/tether/tetherd.toml
.br
systemctl stop tetherd; tetherd check
.br
tether backup \-o /root/tether.backup
.br
tetherd restore \-\-state\-dir /var/lib/tether \-\-key\-file /root/master.key /root/tether.backup
.SH SEE ALSO
tether(1), systemd.exec(5), systemd\-creds(1), ssh(1)
";

fn default_config_path(mode: Mode) -> Option<PathBuf> {
    let path = match mode {
        Mode::System => PathBuf::from("/etc/tether/tetherd.toml"),
        Mode::User => std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?
            .join("tether/tetherd.toml"),
    };
    path.exists().then_some(path)
}

/// The log: TETHER_LOG wins; else `-v`/`-vv`; else, on a terminal, only
/// warnings (the audit trail is in the store, not on the screen); else (the
/// journal, a log file) the configuration's `log`.
fn init_logging(
    config: &Config,
    verbose: u8,
    file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let terminal = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let level = match verbose {
        0 if terminal => "warn".to_owned(),
        0 => config.log.clone(),
        1 => "info".to_owned(),
        _ => "debug".to_owned(),
    };
    let filter = EnvFilter::try_from_env("TETHER_LOG")
        .or_else(|_| EnvFilter::try_new(&level))
        .map_err(|e| anyhow::anyhow!("invalid log filter {level:?}: {e}"))?;
    match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(terminal)
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Our errors name their causes in their own message.
            eprintln!("tetherd: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    let mode = if args.user { Mode::User } else { Mode::System };
    if let Some(DaemonCommand::Man) = args.command {
        use clap::CommandFactory;
        use std::io::Write;
        let man = clap_mangen::Man::new(Args::command()).section("8");
        let mut out = Vec::new();
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
        man.render_subcommands_section(&mut out)?;
        out.extend_from_slice(MANUAL_SECTIONS.as_bytes());
        man.render_version_section(&mut out)?;
        std::io::stdout().write_all(&out)?;
        return Ok(());
    }
    if let Some(DaemonCommand::CheckConfig { path }) = args.command {
        let config = match path.or(args.config).or_else(|| default_config_path(mode)) {
            Some(path) => {
                let config = Config::load(&path)?;
                println!("{}: ok", path.display());
                config
            }
            None => {
                println!("no configuration file: the defaults apply");
                Config::default()
            }
        };
        // What the file cannot say by itself: whether its names exist here.
        if mode == Mode::System
            && tetherd::access::lookup_group(&config.access.socket_group).is_none()
        {
            anyhow::bail!(
                "access.socket_group {:?} is not a group on this host: create it (groupadd \
                 --system {}) or name another",
                config.access.socket_group,
                config.access.socket_group
            );
        }
        return Ok(());
    }
    let uid = tetherd::sys::getuid();
    if let Some(DaemonCommand::Check { accept, json }) = args.command {
        let config = match args.config.or_else(|| default_config_path(mode)) {
            Some(path) => Config::load(&path)?,
            None => Config::default(),
        };
        let options = Options::resolve(mode, args.socket, args.state_dir, config, uid)?;
        return match tetherd::offline::check(&options, accept, json)? {
            true => Ok(()),
            false => std::process::exit(1),
        };
    }
    if let Some(DaemonCommand::Restore {
        backup,
        key_file,
        json,
    }) = args.command
    {
        let config = match args.config.or_else(|| default_config_path(mode)) {
            Some(path) => Config::load(&path)?,
            None => Config::default(),
        };
        let options = Options::resolve(mode, args.socket, args.state_dir, config, uid)?;
        return tetherd::offline::restore(&options, &backup, key_file, json);
    }
    if mode == Mode::System && uid != 0 {
        anyhow::bail!(
            "without --user, tetherd is the system service and runs as root; \
             to try tether as yourself, run `tetherd --user`"
        );
    }
    let config_path = args.config.or_else(|| default_config_path(mode));
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    config.passphrase |= args.passphrase;
    init_logging(&config, args.verbose, args.log_file.as_deref())?;

    tetherd::sys::harden_process()
        .map_err(|e| anyhow::anyhow!("cannot harden the process: {e}"))?;
    tetherd::sys::limit_malloc_arenas();
    let mut options = Options::resolve(mode, args.socket, args.state_dir, config, uid)?;
    options.config_path = config_path;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
            }
        };
        tetherd::run(options, shutdown)
            .await
            .map_err(anyhow::Error::from)
    })
}
