//! Any bytes given to the hint decoder: entries or a typed error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nadb_backend_fs::format::decode_hint(&bytes::Bytes::copy_from_slice(data));
});
