//! `tether audit [filters] [--json] [-f]`, `tether audit verify`,
//! `tether audit hmac`.

use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use tether_api::audit::{AuditEvent, AuditQuery, AuditVerify, HmacRequest};
use tether_api::client::Client;
use tether_api::endpoint as ep;
use tether_api::secret::Secret;

use crate::failure::{Failure, Result};
use crate::output::{print_json, printable, timestamp};
use crate::profile::JsonFlag;
use crate::prompt::read_secret;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    filters: Filters,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain (root); exits 1 and names the first bad
    /// event if any was edited, removed or reordered
    Verify(JsonFlag),
    /// Root: the HMAC the trail holds for a sensitive value, read from stdin
    Hmac,
}

#[derive(Debug, Args)]
struct Filters {
    /// Events from this time on: Unix seconds, `YYYY-MM-DD[THH:MM[:SS]]` (UTC),
    /// or an age such as 30m, 12h, 7d
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Events up to this time (same forms)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this user's events (name or uid)
    #[arg(long, value_name = "WHO")]
    user: Option<String>,
    /// Only this profile's events
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Only operations starting with OP (exec, sftp, sftp.upload, grant, mfa...)
    #[arg(long, value_name = "OP")]
    op: Option<String>,
    /// Print JSON: one array, or with -f one event per line
    #[arg(long)]
    json: bool,
    /// Keep printing new events as they are written
    #[arg(short = 'f', long)]
    follow: bool,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as the filters take it, in Unix seconds.
fn parse_time(text: &str, now: u64) -> std::result::Result<u64, String> {
    let bad = || {
        format!("{text:?} is not a time: use Unix seconds, YYYY-MM-DD[THH:MM[:SS]] or 30m/12h/7d")
    };
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    if let Some(unit) = text.chars().last().filter(|c| "smhdw".contains(*c)) {
        if let Ok(n) = text[..text.len() - 1].parse::<u64>() {
            let secs = match unit {
                's' => n,
                'm' => n * 60,
                'h' => n * 3600,
                'd' => n * 86_400,
                _ => n * 7 * 86_400,
            };
            return Ok(now.saturating_sub(secs));
        }
    }
    let (date, time) = text
        .split_once(['T', ' '])
        .map_or((text, None), |(d, t)| (d, Some(t)));
    let parts: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<std::result::Result<_, _>>()?;
    let [year, month, day] = parts[..] else {
        return Err(bad());
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return Err(bad());
    }
    let mut secs = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let time = time.trim_end_matches('Z');
        let parts: Vec<i64> = time
            .split(':')
            .map(|p| p.parse().map_err(|_| bad()))
            .collect::<std::result::Result<_, _>>()?;
        let (h, m, s) = match parts[..] {
            [h, m] => (h, m, 0),
            [h, m, s] => (h, m, s),
            _ => return Err(bad()),
        };
        if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
            return Err(bad());
        }
        secs += h * 3600 + m * 60 + s;
    }
    u64::try_from(secs).map_err(|_| bad())
}

fn query(filters: &Filters, after: Option<u64>) -> Result<ep::ListAudit> {
    let now = unix_now();
    let time = |text: &Option<String>| {
        text.as_deref()
            .map(|text| parse_time(text, now).map_err(Failure::usage))
            .transpose()
    };
    Ok(ep::ListAudit {
        query: AuditQuery {
            since: time(&filters.since)?,
            until: time(&filters.until)?,
            user: filters.user.clone(),
            profile: filters.profile.clone(),
            op: filters.op.clone(),
            after,
            limit: None,
        },
    })
}

fn line(event: &AuditEvent) -> String {
    let program = event
        .exe
        .as_deref()
        .and_then(|e| e.rsplit('/').next())
        .unwrap_or("-");
    let details: Vec<String> = event
        .details
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{}  #{:<6} uid {:<6} {:<10} {:<18} {:<12} {:<14} {}",
        timestamp(event.time_ms / 1000),
        event.seq,
        event.uid,
        program,
        event.op,
        event.profile.as_deref().unwrap_or("-"),
        event.result,
        details.join(" ")
    )
}

pub async fn run(client: &Client, args: AuditArgs) -> Result<u8> {
    match args.command {
        Some(AuditCommand::Verify(flag)) => {
            let verdict: AuditVerify = client.call(&ep::VerifyAudit {}, &()).await?;
            if flag.json {
                print_json(&verdict)?;
            } else if verdict.ok {
                println!("the audit trail is intact: {} events", verdict.events);
                for range in &verdict.pruned {
                    println!(
                        "  retention ({}) removed events {}-{} ({} events) at {}",
                        range.reason,
                        range.from_seq,
                        range.through_seq,
                        range.removed,
                        timestamp(range.time_ms / 1000)
                    );
                }
            } else {
                println!(
                    "the audit trail is NOT intact: {} (first bad event: {})",
                    verdict.problem.as_deref().unwrap_or("?"),
                    verdict
                        .first_bad
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "?".into())
                );
            }
            Ok(if verdict.ok { 0 } else { 1 })
        }
        Some(AuditCommand::Hmac) => {
            let value = read_secret("value")?;
            let answer = client
                .call(
                    &ep::AuditHmac {},
                    &HmacRequest {
                        value: Secret::new(value.to_string()),
                    },
                )
                .await?;
            println!("{}", answer.hmac);
            Ok(0)
        }
        None => list(client, &args.filters).await,
    }
}

async fn list(client: &Client, filters: &Filters) -> Result<u8> {
    let events: Vec<AuditEvent> = client.call(&query(filters, None)?, &()).await?;
    let print = |events: &[AuditEvent]| -> Result<()> {
        for event in events {
            if filters.json && filters.follow {
                let text = serde_json::to_string(event)
                    .map_err(|e| Failure::new("internal", e.to_string()))?;
                println!("{text}");
            } else if !filters.json {
                println!("{}", printable(&line(event)));
            }
        }
        Ok(())
    };
    if filters.json && !filters.follow {
        print_json(&events)?;
        return Ok(0);
    }
    print(&events)?;
    if !filters.follow {
        return Ok(0);
    }
    let mut last = events.last().map(|e| e.seq);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Until a first event matched, every match is new.
        let events: Vec<AuditEvent> = client.call(&query(filters, last)?, &()).await?;
        print(&events)?;
        if let Some(event) = events.last() {
            last = Some(event.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        assert_eq!(parse_time("1700000000", 0), Ok(1_700_000_000));
        assert_eq!(parse_time("1970-01-02", 0), Ok(86_400));
        assert_eq!(parse_time("2026-11-29", 0), Ok(1_795_910_400));
        assert_eq!(
            parse_time("2026-11-29T06:30", 0),
            Ok(1_795_910_400 + 6 * 3600 + 1800)
        );
        assert_eq!(
            parse_time("2026-11-29 06:30:05Z", 0),
            Ok(1_795_910_400 + 23_405)
        );
        assert_eq!(parse_time("2h", 10_000), Ok(10_000 - 7200));
        assert_eq!(parse_time("7d", 1_000_000), Ok(1_000_000 - 604_800));
        for bad in ["yesterday", "2026-13-01", "2026-11-29T25:00", "1h30", ""] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
