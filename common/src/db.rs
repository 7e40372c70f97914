//! Opening a daemon's embedded store (redb), one way for all three daemons.

use std::path::Path;

/// Pages of the store kept in memory. redb's default (1 GiB) lets a
/// daemon's resident memory grow with every page it ever touched; the
/// records are small and the hot ones fit in a few MiB, and a miss costs a
/// read from the page cache.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Opens (creating when missing) the store at `path` with a bounded cache.
pub fn open(path: &Path) -> Result<redb::Database, redb::DatabaseError> {
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
}
