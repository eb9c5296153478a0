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
    /// Print the tetherd(8) manual page (roff) to stdout
    #[command(hide = true)]
    Man,
}

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
        clap_mangen::Man::new(Args::command())
            .section("8")
            .render(&mut std::io::stdout())?;
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
    if mode == Mode::System && uid != 0 {
        anyhow::bail!(
            "without --user, tetherd is the system service and runs as root; \
             to try tether as yourself, run `tetherd --user`"
        );
    }
    let config_path = args.config.or_else(|| default_config_path(mode));
    let config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let filter = EnvFilter::try_from_env("TETHER_LOG")
        .or_else(|_| EnvFilter::try_new(&config.log))
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?}: {e}", config.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    tetherd::sys::harden_process()
        .map_err(|e| anyhow::anyhow!("cannot harden the process: {e}"))?;
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
