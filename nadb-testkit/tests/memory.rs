//! The conformance suite on the memory backend.
nadb_testkit::conformance!(memory, || async { Ok(nadb_core::MemoryBackend::new()) });
