//! Any bytes given to the frame decoder: a frame or a typed error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use nadb_backend_fs::format::{Seal, read_frame};
    let bytes = bytes::Bytes::copy_from_slice(data);
    let _ = Seal::from_header(data);
    // Format 1 checksums leave the decoder behind them reachable by the fuzzer.
    let _ = read_frame(&bytes, 1 << 26, Seal::unsalted(), 0);
    let _ = read_frame(&bytes, 1 << 26, Seal::with_salt(0), 16);
});
