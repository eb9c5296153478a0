//! The end-to-end scenarios, one module per concern, in one test binary
//! (one link, one harness): the real `tetherd` and `tether` against real
//! servers. `cargo test -p tether-e2e -- access::` runs one module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod agent;
mod api;
mod audit;
mod batch;
mod boundary;
mod cli_ux;
mod cp_modes;
mod crash;
mod daemon;
mod exec;
mod files;
mod forward;
mod ftp;
mod generated;
mod hostile;
mod hostile_server;
mod jump;
mod load;
mod manage;
mod passphrase;
mod pool;
mod profiles;
mod rotate;
mod servers;
mod shell;
mod shells;
mod store_faults;
mod store_life;
mod systemd;
