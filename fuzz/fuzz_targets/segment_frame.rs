//! Any bytes given to the frame decoder: a frame or a typed error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use nadb_backend_fs::format::{Seal, read_frame};
    let _ = Seal::from_header(data);
    let _ = read_frame(&bytes::Bytes::copy_from_slice(data), 1 << 26, Seal::new(), 16);
    // The same bytes as the payload of a correctly signed frame, so the payload decoder
    // behind the checksum is reached too.
    let seal = Seal::with_salt(0);
    let mut frame = (data.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(data);
    seal.sign(&mut frame, 16);
    let _ = read_frame(&bytes::Bytes::from(frame), 1 << 26, seal, 16);
});
