//! Any bytes given to the record decoder and the value codec: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = nadb_core::codec::decode_record(bytes::Bytes::copy_from_slice(data)) {
        let _ = nadb_core::codec::decode_value(r.meta.codec, r.value, r.meta.value_len);
    }
});
