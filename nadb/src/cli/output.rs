//! Writing results to stdout: JSON documents under `--json`, plain text otherwise. Every write
//! is checked, so a closed stdout is an error instead of a panic.

use std::io::{self, Write};

use serde::Serialize;

use super::exit::Failure;

/// Where command results go.
pub(crate) struct Output {
    pub(crate) json: bool,
    out: io::BufWriter<io::Stdout>,
}

impl Output {
    pub(crate) fn new(json: bool) -> Output {
        Output {
            json,
            out: io::BufWriter::new(io::stdout()),
        }
    }

    /// One JSON document on a line.
    pub(crate) fn json(&mut self, value: &impl Serialize) -> Result<(), Failure> {
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// A line of text.
    pub(crate) fn line(&mut self, text: impl AsRef<str>) -> Result<(), Failure> {
        self.out.write_all(text.as_ref().as_bytes())?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Bytes as they are.
    pub(crate) fn raw(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.out.write_all(bytes)?;
        Ok(())
    }

    /// The underlying writer, for streamed output.
    pub(crate) fn writer(&mut self) -> &mut impl Write {
        &mut self.out
    }

    pub(crate) fn flush(&mut self) -> Result<(), Failure> {
        self.out.flush()?;
        Ok(())
    }
}
