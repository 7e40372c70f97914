//! Config files: TOML, every field optional, flags override them.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::Error;

/// Reads `path` as TOML. A missing file at the default location (when
/// `explicit` is false) gives the defaults; a missing explicit file is an error.
pub fn load<T: DeserializeOwned + Default>(path: &Path, explicit: bool) -> Result<T, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(T::default()),
        Err(e) => Err(Error::Config(format!("read {}: {e}", path.display()))),
    }
}
