//! Which image each installed container service runs: the image id an
//! archive loaded as (or a reference resolved to) at install, so a start
//! creates the container from exactly that image, and a remove knows what
//! to delete. `<state>/containers/images.json`, replaced atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One service's image, as prepared at install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedImage {
    /// `sha256:<hex>`: what the container is created from.
    pub image_id: String,
    /// Loaded from this bundle archive (then Weft owns the image and
    /// removes it with the app); `None`: an `image` reference.
    pub archive: Option<String>,
}

type Table = BTreeMap<String, BTreeMap<String, BTreeMap<String, PreparedImage>>>;

/// app → version → service → image.
pub struct ImageStore {
    path: PathBuf,
    table: Mutex<Table>,
}

/// The store's file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl ImageStore {
    /// Open (or start) the store under `dir`. A malformed file is an error
    /// naming it, not an empty store.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("images.json");
        let err = |message: String| StoreError {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let table = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(ImageStore {
            path,
            table: Mutex::new(table),
        })
    }

    /// The image prepared for a service of an app version.
    pub fn get(&self, app: &str, version: &str, service: &str) -> Option<PreparedImage> {
        self.lock()
            .get(app)
            .and_then(|v| v.get(version))
            .and_then(|s| s.get(service))
            .cloned()
    }

    /// Record the image prepared for a service, durably.
    pub fn put(
        &self,
        app: &str,
        version: &str,
        service: &str,
        image: PreparedImage,
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.entry(app.into())
            .or_default()
            .entry(version.into())
            .or_default()
            .insert(service.into(), image);
        self.save(&t)
    }

    /// Forget every version of `app` but `keep` (the one installed);
    /// returns the archive-loaded image ids no remaining entry uses.
    pub fn retain(&self, app: &str, keep: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut t = self.lock();
        let Some(versions) = t.get_mut(app) else {
            return Ok(Vec::new());
        };
        let dropped: Vec<PreparedImage> = versions
            .iter()
            .filter(|(v, _)| Some(v.as_str()) != keep)
            .flat_map(|(_, s)| s.values().cloned())
            .collect();
        versions.retain(|v, _| Some(v.as_str()) == keep);
        if versions.is_empty() {
            t.remove(app);
        }
        let in_use = |id: &str| {
            t.values()
                .flat_map(|v| v.values())
                .flat_map(|s| s.values())
                .any(|i| i.image_id == id)
        };
        let mut unused: Vec<String> = dropped
            .into_iter()
            .filter(|i| i.archive.is_some() && !in_use(&i.image_id))
            .map(|i| i.image_id)
            .collect();
        unused.sort();
        unused.dedup();
        self.save(&t)?;
        Ok(unused)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, t: &Table) -> Result<(), StoreError> {
        let err = |e: std::io::Error| StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(t).map_err(|e| StoreError {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(id: &str, archive: bool) -> PreparedImage {
        PreparedImage {
            image_id: id.into(),
            archive: archive.then(|| "images/x.tar".into()),
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_removal_reports_unused_archive_images() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        s.put("a", "1.0.0", "web", img("sha256:1", true)).unwrap();
        s.put("a", "2.0.0", "web", img("sha256:2", true)).unwrap();
        s.put("a", "2.0.0", "db", img("sha256:9", false)).unwrap();
        s.put("b", "1.0.0", "web", img("sha256:1", true)).unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        assert_eq!(s.get("a", "2.0.0", "web"), Some(img("sha256:2", true)));
        // Upgrade to 2.0.0: 1.0.0's image is still b's.
        assert!(s.retain("a", Some("2.0.0")).unwrap().is_empty());
        // Remove a: its archive image goes, the pulled one stays.
        assert_eq!(s.retain("a", None).unwrap(), vec!["sha256:2".to_string()]);
        assert_eq!(s.get("a", "2.0.0", "web"), None);
        assert!(s.get("b", "1.0.0", "web").is_some());
    }

    #[test]
    fn a_malformed_store_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("images.json"), "{not json").unwrap();
        let e = ImageStore::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("images.json"), "{e}");
    }
}
