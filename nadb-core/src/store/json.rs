//! Typed values through serde: `set_json` and `get_json`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{SetOptions, Store};
use crate::error::{Error, Result};

/// Describes a serde_json error by category and position only: its message can quote the
/// input, and stored values must never reach an error message.
fn json_error(action: &str, e: &serde_json::Error) -> Error {
    Error::InvalidValue {
        reason: format!(
            "cannot {action} JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    }
}

impl Store {
    /// Stores `value` serialized as JSON.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct User { name: String }
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_json("u", &User { name: "ada".into() }).await?;
    /// assert_eq!(store.get_json::<User>("u").await?, Some(User { name: "ada".into() }));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.set_json_with(key, value, &SetOptions::default()).await
    }

    /// Stores `value` serialized as JSON, with tags and/or expiry.
    pub async fn set_json_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| json_error("encode", &e))?;
        self.set_with(key, bytes, opts).await
    }

    /// Reads and deserializes a JSON value; `None` when there is no live record, an
    /// [`Error::InvalidValue`] when the value is not valid JSON of type `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| json_error("decode", &e)),
        }
    }
}
