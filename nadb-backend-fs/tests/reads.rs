//! Reads of sealed segments, through a memory mapping (the default) and through `pread`:
//! segments sealed while the store runs, by compaction and at open all read back what was
//! written, and a frame damaged after the mapping was made still fails its checksum.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use nadb_backend_fs::{FsBackend, FsOptions};
use nadb_core::{Batch, Error, Meta, Record, Result, Space, StorageBackend, Timestamp};

fn record(value: &str, version: u64) -> Record {
    let mut meta = Meta::new(Timestamp::from_millis(1_700_000_000_000), version);
    meta.value_len = value.len() as u64;
    meta.stored_len = value.len() as u64;
    Record::new(Bytes::copy_from_slice(value.as_bytes()), meta)
}

fn small_segments(mmap_reads: bool) -> FsOptions {
    FsOptions {
        max_segment_size: 4096,
        mmap_reads,
        ..FsOptions::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

/// Writes 400 batches over 150 keys (some deleted) into segments of 4 KiB; returns the model.
async fn write(b: &FsBackend, space: &Space) -> Result<BTreeMap<String, Bytes>> {
    let mut model = BTreeMap::new();
    for i in 0..400u64 {
        let k = format!("k{:03}", i % 150);
        let mut batch = Batch::new(space.clone());
        if i % 11 == 5 {
            batch.delete(k.clone());
            model.remove(&k);
        } else {
            let v = format!("v{i:04}-{}", "q".repeat(60));
            batch.put(k.clone(), record(&v, i + 1));
            model.insert(k, Bytes::from(v));
        }
        b.apply(&batch).await?;
    }
    b.sync().await?;
    Ok(model)
}

async fn assert_reads(b: &FsBackend, space: &Space, model: &BTreeMap<String, Bytes>, when: &str) {
    for i in 0..150u64 {
        let k = format!("k{i:03}");
        let got = b.get(space, &k).await.expect("read").map(|r| r.value);
        assert_eq!(got.as_ref(), model.get(&k), "{when}: {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_segments_read_back_what_was_written_mapped_or_not() -> Result<()> {
    for mmap_reads in [true, false] {
        let dir = tempfile::tempdir().expect("dir");
        let space = Space::default();
        let b = FsBackend::open_with(dir.path(), small_segments(mmap_reads)).await?;
        let model = write(&b, &space).await?;
        assert!(
            segments(dir.path()).len() > 5,
            "the writes span many segments"
        );
        assert_reads(&b, &space, &model, "sealed while running").await;
        b.compact().await?;
        assert_reads(&b, &space, &model, "after compaction").await;
        // More writes after the first reads mapped the older segments.
        let mut batch = Batch::new(space.clone());
        batch.put("k000", record("late", 10_000));
        b.apply(&batch).await?;
        b.close().await?;
        let mut model = model;
        model.insert("k000".into(), Bytes::from_static(b"late"));
        let b = FsBackend::open_with(dir.path(), small_segments(mmap_reads)).await?;
        assert_reads(&b, &space, &model, "sealed at open").await;
        b.close().await?;
    }
    Ok(())
}

/// Damage is never read as data: a value flipped on disk after its segment was read (and, by
/// default, mapped) makes the next read fail as corrupt, naming the segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_damaged_after_open_fails_its_read_as_corrupt() -> Result<()> {
    for mmap_reads in [true, false] {
        let dir = tempfile::tempdir().expect("dir");
        let space = Space::default();
        let b = FsBackend::open_with(dir.path(), small_segments(mmap_reads)).await?;
        let model = write(&b, &space).await?;
        let files = segments(dir.path());
        let sealed = &files[..files.len() - 1];
        // A key whose newest value sits in a sealed segment.
        let (key, file, at) = model
            .iter()
            .find_map(|(k, v)| {
                sealed.iter().find_map(|f| {
                    let bytes = fs::read(f).expect("read segment");
                    let at = bytes.windows(v.len()).position(|w| w == &v[..])?;
                    Some((k.clone(), f.clone(), at))
                })
            })
            .expect("a value in a sealed segment");
        assert_reads(&b, &space, &model, "before the damage").await;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .expect("open");
        let mut byte = [0u8];
        f.read_exact_at(&mut byte, at as u64 + 3)
            .expect("read byte");
        f.write_all_at(&[byte[0] ^ 0x20], at as u64 + 3)
            .expect("flip");
        drop(f);
        match b.get(&space, &key).await {
            Err(Error::Corrupt { location, .. }) => {
                assert!(location.ends_with(&*file.file_name().expect("name").to_string_lossy()));
            }
            other => panic!("mmap_reads {mmap_reads}: want Corrupt, got {other:?}"),
        }
        b.close().await?;
    }
    Ok(())
}
