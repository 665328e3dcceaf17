//! Any bytes given to the frame decoder: a frame or a typed error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nadb_backend_fs::format::read_frame(&bytes::Bytes::copy_from_slice(data), 1 << 26);
});
