//! `tether forward` (ssh's `-L` and `-D`) and `tether proxy` (ssh's `-W`):
//! TCP connections made by a profile's server, bridged by tetherd.
//!
//! The CLI binds the local ports with the caller's own permissions (tetherd
//! binds nothing for a caller), accepts, and hands each accepted
//! connection to tetherd ([`tether_api::tunnel`]), which moves its bytes:
//! this process only listens, answers SOCKS and waits. When it ends
//! (Ctrl-C), tetherd ends the connections it handed over.

mod socks;

use std::net::SocketAddr;

use clap::Args;
use tether_api::client::Client;
use tether_api::tunnel::{TunnelKind, TunnelRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::failure::{Failure, Result};
use crate::output::{print_json_line, printable};

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("forwards").required(true).multiple(true).args(["local", "socks"]))]
pub struct ForwardArgs {
    /// The profile whose server makes the connections
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// Connections to BIND:PORT here [BIND: 127.0.0.1] go to HOST:HOSTPORT
    /// as the server resolves it (repeatable)
    #[arg(short = 'L', value_name = "[BIND:]PORT:HOST:HOSTPORT")]
    local: Vec<String>,
    /// A SOCKS5 proxy on BIND:PORT here [BIND: 127.0.0.1] (CONNECT, no
    /// authentication): each connection goes where its client asks, through
    /// the server (repeatable)
    #[arg(short = 'D', value_name = "[BIND:]PORT")]
    socks: Vec<String>,
    /// Print one JSON line per listener once it is bound (the port, when
    /// PORT is 0), for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The profile whose server makes the connection
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::complete::profiles))]
    name: String,
    /// Where the server connects to, as it resolves the name
    host: String,
    port: u16,
}

/// One listener's job.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Forward {
    /// `-L`: every connection to this one destination.
    Local { host: String, port: u16 },
    /// `-D`: where each SOCKS client asks.
    Socks,
}

/// Splits at `:`, keeping `[...]` (an IPv6 address) whole and unbracketed.
fn fields(spec: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = spec;
    loop {
        let (field, after) = match rest.strip_prefix('[') {
            Some(inner) => {
                let (address, after) = inner.split_once(']')?;
                if !(after.is_empty() || after.starts_with(':')) {
                    return None;
                }
                (address, after)
            }
            None => match rest.find(':') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, ""),
            },
        };
        out.push(field.to_owned());
        match after.strip_prefix(':') {
            Some(more) => rest = more,
            None => return Some(out),
        }
    }
}

/// `[BIND:]PORT` with the listener's address.
fn bind_address(bind: Option<&str>, port: &str) -> Option<SocketAddr> {
    let port: u16 = port.parse().ok()?;
    let ip = match bind {
        None | Some("localhost") => std::net::IpAddr::from([127, 0, 0, 1]),
        Some("*" | "") => std::net::IpAddr::from([0, 0, 0, 0]),
        Some(ip) => ip.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

fn parse_local(spec: &str) -> Result<(SocketAddr, Forward)> {
    let bad = || {
        Failure::usage(format!(
            "-L {spec}: give [BIND:]PORT:HOST:HOSTPORT (BIND an IP address; an IPv6 one in brackets)"
        ))
    };
    let parts = fields(spec).ok_or_else(bad)?;
    let (bind, rest) = match parts.len() {
        3 => (None, &parts[..]),
        4 => (Some(parts[0].as_str()), &parts[1..]),
        _ => return Err(bad()),
    };
    let address = bind_address(bind, &rest[0]).ok_or_else(bad)?;
    let port: u16 = rest[2].parse().ok().filter(|&p| p != 0).ok_or_else(bad)?;
    if rest[1].is_empty() {
        return Err(bad());
    }
    Ok((
        address,
        Forward::Local {
            host: rest[1].clone(),
            port,
        },
    ))
}

fn parse_socks(spec: &str) -> Result<(SocketAddr, Forward)> {
    let bad = || Failure::usage(format!("-D {spec}: give [BIND:]PORT"));
    let parts = fields(spec).ok_or_else(bad)?;
    let address = match parts.as_slice() {
        [port] => bind_address(None, port),
        [bind, port] => bind_address(Some(bind), port),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok((address, Forward::Socks))
}

/// What `--json` prints for a listener.
#[derive(serde::Serialize)]
struct Listening<'a> {
    listen: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    through: &'a str,
}

pub async fn forward(client: &Client, args: ForwardArgs) -> Result<u8> {
    crate::profile::check_name(&args.name)?;
    let mut wanted = Vec::new();
    for spec in &args.local {
        wanted.push(parse_local(spec)?);
    }
    for spec in &args.socks {
        wanted.push(parse_socks(spec)?);
    }
    // Bind everything first: a port in use fails the command before any
    // connection is taken.
    let mut listeners = Vec::new();
    for (address, job) in wanted {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| Failure::new("io_error", format!("cannot listen on {address}: {e}")))?;
        let bound = listener.local_addr().unwrap_or(address);
        if !bound.ip().is_loopback() {
            eprintln!(
                "tether: warning: {bound} is reachable from other hosts: anyone who can connect \
                 to it uses your access to {}",
                args.name
            );
        }
        let (kind, to) = match &job {
            Forward::Local { host, port } => {
                ("local", Some(tether_api::types::host_and_port(host, *port)))
            }
            Forward::Socks => ("socks", None),
        };
        if args.json {
            print_json_line(&Listening {
                listen: bound.to_string(),
                kind,
                to: to.clone(),
                through: &args.name,
            })?;
        } else {
            eprintln!(
                "tether: forwarding {bound} -> {} through {}",
                printable(to.as_deref().unwrap_or("SOCKS5")),
                args.name
            );
        }
        listeners.push((listener, job));
    }
    for (listener, job) in listeners {
        tokio::spawn(accept_loop(
            client.clone(),
            args.name.clone(),
            listener,
            job,
        ));
    }
    until_stopped().await;
    Ok(0)
}

/// Waits for Ctrl-C or SIGTERM.
async fn until_stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

async fn accept_loop(client: Client, name: String, listener: TcpListener, job: Forward) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors and the like: wait, do not spin.
                eprintln!("tether: warning: accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = client.clone();
        let name = name.clone();
        let job = job.clone();
        tokio::spawn(async move { carry(&client, &name, tcp, peer, job).await });
    }
}

/// Hands one accepted connection to tetherd, and waits while it is carried.
async fn carry(client: &Client, name: &str, mut tcp: TcpStream, peer: SocketAddr, job: Forward) {
    let _ = tcp.set_nodelay(true);
    let (host, port, kind) = match job {
        Forward::Local { host, port } => (host, port, TunnelKind::Local),
        Forward::Socks => match socks::destination(&mut tcp).await {
            Some((host, port)) => (host, port, TunnelKind::Socks),
            None => return,
        },
    };
    let request = TunnelRequest {
        host: host.clone(),
        port,
        kind,
        origin: Some(peer.to_string()),
        socket: true,
    };
    let mut control = match client.open_tunnel(name, &request).await {
        Ok((control, _)) => control,
        Err(error) => {
            let failure = Failure::from(error);
            if kind == TunnelKind::Socks {
                socks::reply(&mut tcp, socks::Reply::for_code(failure.api)).await;
            }
            eprintln!(
                "tether: {peer} -> {} through {name}: error[{}]: {}",
                printable(&tether_api::types::host_and_port(&host, port)),
                printable(&failure.code),
                printable(&failure.message)
            );
            return;
        }
    };
    if kind == TunnelKind::Socks {
        // Before the hand-over: from then on the server's bytes flow.
        socks::reply(&mut tcp, socks::Reply::Succeeded).await;
    }
    if let Err(error) = tether_api::agent::send_fd(&control, &tcp).await {
        eprintln!("tether: {peer}: cannot hand the connection to tetherd: {error}");
        return;
    }
    drop(tcp);
    // tetherd closes this when the connection ends; until then it says
    // that this process still runs.
    let mut byte = [0u8; 1];
    let _ = control.read(&mut byte).await;
}

pub async fn proxy(client: &Client, args: ProxyArgs) -> Result<u8> {
    crate::profile::check_name(&args.name)?;
    let request = TunnelRequest {
        host: args.host,
        port: args.port,
        kind: TunnelKind::Proxy,
        origin: None,
        socket: false,
    };
    let (stream, early) = client.open_tunnel(&args.name, &request).await?;
    let (mut from_server, mut to_server) = stream.into_split();
    let mut stdout = tokio::io::stdout();
    let down = async {
        stdout.write_all(&early).await?;
        tokio::io::copy(&mut from_server, &mut stdout).await?;
        stdout.flush().await
    };
    let up = async {
        let copied = tokio::io::copy(&mut tokio::io::stdin(), &mut to_server).await;
        let _ = to_server.shutdown().await;
        copied
    };
    // Done when the server's side ends; stdin may stay open (ssh keeps it).
    tokio::pin!(up);
    let mut up_done = false;
    tokio::pin!(down);
    loop {
        tokio::select! {
            ended = &mut down => {
                return ended
                    .map(|()| 0)
                    .map_err(|e| Failure::new("io_error", format!("the connection broke: {e}")));
            }
            _ = &mut up, if !up_done => up_done = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs_read_as_ssh_reads_them() {
        let (address, job) = parse_local("5432:db.internal:5432").unwrap();
        assert_eq!(address, "127.0.0.1:5432".parse().unwrap());
        assert_eq!(
            job,
            Forward::Local {
                host: "db.internal".into(),
                port: 5432
            }
        );
        let (address, job) = parse_local("[::1]:8080:[fe80::1]:80").unwrap();
        assert_eq!(address, "[::1]:8080".parse().unwrap());
        assert_eq!(
            job,
            Forward::Local {
                host: "fe80::1".into(),
                port: 80
            }
        );
        assert_eq!(
            parse_local("0.0.0.0:1:h:2").unwrap().0,
            "0.0.0.0:1".parse().unwrap()
        );
        for bad in [
            "5432",
            "5432:db",
            "x:db:1",
            "1:db:0",
            "1::5",
            "a:b:c:d:e",
            "[::1:1:h:2",
        ] {
            assert!(parse_local(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_socks("1080").unwrap().0,
            "127.0.0.1:1080".parse().unwrap()
        );
        assert_eq!(
            parse_socks("[::1]:1080").unwrap().0,
            "[::1]:1080".parse().unwrap()
        );
        assert!(parse_socks("db:1080").is_err());
    }
}
