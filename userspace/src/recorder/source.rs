//! Where `replay` gets its seconds: a [`Source`] hands over a [`Recording`]. A file is
//! one source; the service's live ring, asked through a local socket, can be another
//! without the console knowing the difference.

use std::path::PathBuf;

use super::file::{self, Recording};

pub trait Source {
    /// What it is, for messages: a file's path.
    fn name(&self) -> String;
    /// The seconds it holds, or a one-line reason it has none.
    fn load(&self) -> Result<Recording, String>;
}

/// A recording file.
pub struct FileSource(pub PathBuf);

impl Source for FileSource {
    fn name(&self) -> String {
        self.0.display().to_string()
    }

    fn load(&self) -> Result<Recording, String> {
        file::read(&self.0)
    }
}
