//! The stream framing: any bytes from a peer. Decoding never panics, never
//! claims more bytes than it was given, and a decoded frame encodes to bytes
//! that decode to the same frame (JSON payloads need not be byte-identical).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_api::frame::decode;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((frame, used))) = decode(rest) {
        assert!(used > 0 && used <= rest.len());
        let mut again = Vec::new();
        frame.encode(&mut again);
        let (back, len) = decode(&again).expect("re-decode").expect("whole frame");
        assert_eq!(len, again.len());
        assert_eq!(back, frame);
        rest = &rest[used..];
    }
});
