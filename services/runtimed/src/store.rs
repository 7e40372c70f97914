//! Container records in `redb`: id → record, name → id. Names are claimed in
//! the same transaction that checks them, so two creates with one name
//! cannot both win.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{Error, Result};
use crate::model::Container;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");

pub struct Store {
    db: Database,
}

fn enc(c: &Container) -> Result<Vec<u8>> {
    serde_json::to_vec(c).map_err(|e| Error::Internal(format!("encode container: {e}")))
}

/// Decodes a record, bringing one written by an older daemon up to date.
fn dec(b: &[u8]) -> Result<Container> {
    let mut c: Container =
        serde_json::from_slice(b).map_err(|e| Error::Internal(format!("decode container: {e}")))?;
    c.migrate();
    Ok(c)
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let db = rdock_common::db::open(path)?;
        let txn = db.begin_write()?;
        txn.open_table(CONTAINERS)?;
        txn.open_table(NAMES)?;
        txn.commit()?;
        Ok(Store { db })
    }

    /// Records a new container, failing if its name is taken.
    pub fn insert(&self, c: &Container) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut names = txn.open_table(NAMES)?;
            if let Some(other) = names.get(c.name.as_str())? {
                let other = other.value().to_string();
                return Err(Error::AlreadyExists(format!(
                    "the container name \"/{}\" is already in use by container \"{other}\"; remove or rename that container to be able to reuse that name",
                    c.name
                )));
            }
            names.insert(c.name.as_str(), c.id.as_str())?;
            txn.open_table(CONTAINERS)?
                .insert(c.id.as_str(), enc(c)?.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces a record (the name must not change).
    pub fn update(&self, c: &Container) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(CONTAINERS)?
            .insert(c.id.as_str(), enc(c)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn remove(&self, c: &Container) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut names = txn.open_table(NAMES)?;
            let owner = names.get(c.name.as_str())?.map(|g| g.value().to_string());
            if owner.as_deref() == Some(c.id.as_str()) {
                names.remove(c.name.as_str())?;
            }
            txn.open_table(CONTAINERS)?.remove(c.id.as_str())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<Container>> {
        let t = self.db.begin_read()?.open_table(CONTAINERS)?;
        t.get(id)?.map(|g| dec(g.value())).transpose()
    }

    pub fn all(&self) -> Result<Vec<Container>> {
        let t = self.db.begin_read()?.open_table(CONTAINERS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(dec(item?.1.value())?);
        }
        Ok(out)
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn find(&self, key: &str) -> Result<Container> {
        let not_found = || Error::NotFound(format!("no such container: {key}"));
        if key.is_empty() {
            return Err(not_found());
        }
        if let Some(c) = self.get(key)? {
            return Ok(c);
        }
        let name = key.strip_prefix('/').unwrap_or(key);
        let by_name = {
            let t = self.db.begin_read()?.open_table(NAMES)?;
            t.get(name)?.map(|g| g.value().to_string())
        };
        if let Some(id) = by_name {
            return self.get(&id)?.ok_or_else(not_found);
        }
        if key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits: Vec<Container> = self
                .all()?
                .into_iter()
                .filter(|c| c.id.starts_with(key))
                .collect();
            match hits.len() {
                1 => return Ok(hits.remove(0)),
                0 => {}
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "multiple containers match id prefix {key:?}"
                    )))
                }
            }
        }
        Err(not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, name: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_and_lookup_works() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        s.insert(&c("abc123", "web")).unwrap();
        let e = s.insert(&c("def456", "web")).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
        s.insert(&c("abd789", "db")).unwrap();
        assert_eq!(s.find("web").unwrap().id, "abc123");
        assert_eq!(s.find("/db").unwrap().id, "abd789");
        assert_eq!(s.find("abc").unwrap().id, "abc123");
        assert!(matches!(s.find("ab"), Err(Error::InvalidArgument(_))));
        assert!(matches!(s.find("zzz"), Err(Error::NotFound(_))));
        s.remove(&c("abc123", "web")).unwrap();
        s.insert(&c("def456", "web")).unwrap();
    }
}
