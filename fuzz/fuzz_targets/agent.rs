//! The ssh-agent socket: any bytes from a program of the caller's. Reading
//! requests, the logins inside sign requests and the session binds never
//! panics, and never reads more requests than there are frames.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let read = tetherd::agent::session::read_requests(data);
    assert!(read <= data.len() / 4);
    let _ = tetherd::agent::login::parse_login(data);
});
