//! redb as a [`Baseline`]: the embedded store a Rust user would most likely pick instead of
//! nadb's `fs://` backend. One database file per data set; a load is one write transaction,
//! a durable write one transaction each (redb's default, immediately durable, commit);
//! concurrent writers are threads taking turns at redb's single write transaction. Reads
//! share one read transaction per `get_all`, as a reader of many keys would.

use std::collections::HashMap;
use std::path::PathBuf;

use bytes::Bytes;
use nadb::BoxError;
use nadb::bench::Baseline;
use redb::{Database, ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// One write transaction, so one durable commit, per item.
fn insert_each_committed<'a>(
    db: &Database,
    items: impl IntoIterator<Item = &'a (String, Bytes)>,
) -> Result<(), BoxError> {
    for (k, v) in items {
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?.insert(k.as_str(), &v[..])?;
        tx.commit()?;
    }
    Ok(())
}

/// redb databases in one directory.
pub struct RedbBaseline {
    dir: PathBuf,
    sets: HashMap<String, Database>,
}

impl RedbBaseline {
    /// Database files go into `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> RedbBaseline {
        RedbBaseline {
            dir: dir.into(),
            sets: HashMap::new(),
        }
    }

    fn db(&self, set: &str) -> Result<&Database, BoxError> {
        self.sets
            .get(set)
            .ok_or_else(|| BoxError::from(format!("data set {set} is not open")))
    }
}

#[nadb::async_trait]
impl Baseline for RedbBaseline {
    fn name(&self) -> String {
        "redb".into()
    }

    async fn open(&mut self, set: &str) -> Result<(), BoxError> {
        if !self.sets.contains_key(set) {
            let db = Database::create(self.dir.join(format!("{set}.redb")))?;
            self.sets.insert(set.to_string(), db);
        }
        Ok(())
    }

    async fn close(&mut self, set: &str) -> Result<bool, BoxError> {
        self.sets.remove(set);
        Ok(true)
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let tx = self.db(set)?.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            for (k, v) in items {
                table.insert(k.as_str(), &v[..])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        insert_each_committed(self.db(set)?, items)
    }

    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        let db = self.db(set)?;
        nadb::bench::in_threads(items, writers, |part| insert_each_committed(db, part))
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let rx = self.db(set)?.begin_read()?;
        let table = rx.open_table(TABLE)?;
        let mut found = 0;
        for k in keys {
            if let Some(v) = table.get(k.as_str())? {
                std::hint::black_box(v.value().len());
                found += 1;
            }
        }
        Ok(found)
    }
}
