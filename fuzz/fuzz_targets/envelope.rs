//! The envelope decoder: any bytes as a sealed record. Opening never
//! panics and never succeeds for bytes that were not sealed under the key
//! and associated data; a sealed value opens to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tetherd::store::envelope::{MasterKey, open, seal};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::from_bytes(Zeroizing::new([7u8; 32]));
    let aad = "tether/v1/secrets/web1/credential";
    if let Ok(plain) = open(&key, aad, data) {
        // Only a real envelope opens: forging one is the cipher's job, so
        // the fuzzer finding one is a bug.
        panic!("opened {} bytes of fuzzer input", plain.len());
    }
    let sealed = seal(&key, aad, data).expect("seal");
    assert_eq!(&open(&key, aad, &sealed).expect("open")[..], data);
    assert!(open(&key, "tether/v1/secrets/other/credential", &sealed).is_err());
});
