//! The configuration parser: any text. Never panics; an error names a line
//! when the text has one to name.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(message) = tetherd::config::Config::parse(text) {
        assert!(!message.is_empty());
    }
});
