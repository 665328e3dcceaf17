//! Exit codes and the failure every command returns: a code and a one-line message.

use std::fmt;

use crate::Error;
use crate::ndjson::NdjsonError;

/// Success.
pub const OK: u8 = 0;
/// The key asked for does not exist (or `exists`/`del` found nothing).
pub const NOT_FOUND: u8 = 1;
/// The command line or an argument is invalid.
pub const USAGE: u8 = 2;
/// Anything else failed: the store, a file, a check.
pub const FAILURE: u8 = 3;

/// Why a command failed: its exit code and a one-line message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// The command already printed its result (`exists` answering no, `verify` listing
    /// problems): only the stderr line is left to write.
    pub(crate) printed: bool,
}

impl Failure {
    pub(crate) fn not_found(key: &str) -> Failure {
        Failure {
            code: NOT_FOUND,
            message: format!("key not found: {key:?}"),
            printed: false,
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
            printed: false,
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Failure {
        Failure {
            code: FAILURE,
            message: message.into(),
            printed: false,
        }
    }

    /// The same failure, noting that the result is already on stdout.
    pub(crate) fn after_output(mut self) -> Failure {
        self.printed = true;
        self
    }

    /// The kind named in JSON error output.
    pub(crate) fn kind(&self) -> &'static str {
        match self.code {
            NOT_FOUND => "not_found",
            USAGE => "usage",
            _ => "failure",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the underlying message held.
        let line: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(&line)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        // Bad input the user typed is a usage error; a bad URL is a failure to open a store.
        let code = match e {
            Error::InvalidKey { .. }
            | Error::InvalidSpace { .. }
            | Error::InvalidTag { .. }
            | Error::InvalidTtl { .. }
            | Error::InvalidArgument { .. }
            | Error::ValueTooLarge { .. } => USAGE,
            _ => FAILURE,
        };
        Failure {
            code,
            message: e.to_string(),
            printed: false,
        }
    }
}

impl From<NdjsonError> for Failure {
    fn from(e: NdjsonError) -> Failure {
        match e {
            NdjsonError::Store(e) => e.into(),
            other => Failure::other(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::other(format!("i/o error: {e}"))
    }
}
