//! Images: digest lookup, pull policy, `docker load` / `docker save`.

use std::collections::BTreeSet;
use std::path::Path;

use bollard::query_parameters::{CreateImageOptions, ImportImageOptions, RemoveImageOptions};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::Engine;
use crate::error::EngineError;

/// An image as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id: the digest of its config, `sha256:<hex>`. The same
    /// bytes loaded anywhere give the same id.
    pub id: String,
    /// Tags, e.g. `weft-test/busybox:latest`.
    pub repo_tags: Vec<String>,
    /// Registry digests (`name@sha256:...`), for pulled images only.
    pub repo_digests: Vec<String>,
}

/// Whether a missing image may be pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Never pull: a missing image is an error.
    Never,
    /// Pull only when the image is not present.
    IfNotPresent,
}

impl Engine {
    /// Looks an image up by reference or id.
    pub async fn image_info(&self, reference: &str) -> Result<ImageInfo, EngineError> {
        let i = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(|e| EngineError::api("inspect image", "image", reference, e))?;
        Ok(ImageInfo {
            id: i.id.unwrap_or_default(),
            repo_tags: i.repo_tags.unwrap_or_default(),
            repo_digests: i.repo_digests.unwrap_or_default(),
        })
    }

    /// Makes sure the image is present, pulling it when the policy allows.
    /// The pull is bounded by [`crate::EngineConfig::pull_timeout`].
    pub async fn ensure_image(
        &self,
        reference: &str,
        pull: PullPolicy,
    ) -> Result<ImageInfo, EngineError> {
        match self.image_info(reference).await {
            Ok(i) => return Ok(i),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        if pull == PullPolicy::Never {
            return Err(EngineError::ImageNotPresent {
                image: reference.to_string(),
            });
        }
        let (from_image, tag) = split_reference(reference);
        let opts = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        let docker = self.docker.clone().with_timeout(self.cfg.pull_timeout);
        let pull = async {
            let mut s = docker.create_image(Some(opts), None, None);
            while let Some(item) = s.next().await {
                let info = item.map_err(|e| match e {
                    bollard::errors::Error::RequestTimeoutError => EngineError::PullTimeout {
                        image: reference.to_string(),
                        after: self.cfg.pull_timeout,
                    },
                    e => EngineError::PullFailed {
                        image: reference.to_string(),
                        message: e.to_string(),
                    },
                })?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(EngineError::PullFailed {
                        image: reference.to_string(),
                        message: err,
                    });
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.cfg.pull_timeout, pull)
            .await
            .map_err(|_| EngineError::PullTimeout {
                image: reference.to_string(),
                after: self.cfg.pull_timeout,
            })??;
        self.image_info(reference).await
    }

    /// `docker load` of a `docker save` archive on disk, streamed. The
    /// archive must hold exactly one image (by id; several tags are fine).
    /// The caller checks the archive's digest before.
    pub async fn load_archive(&self, path: &Path) -> Result<ImageInfo, EngineError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| EngineError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
        let chunks = futures_util::stream::try_unfold(file, |mut f| async move {
            let mut buf = vec![0u8; 256 * 1024];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), f)))
        });
        self.load(chunks, &path.display().to_string()).await
    }

    /// `docker load` of an archive held in memory.
    pub async fn load_archive_bytes(&self, archive: Bytes) -> Result<ImageInfo, EngineError> {
        let one = futures_util::stream::once(async move { Ok::<_, std::io::Error>(archive) });
        self.load(one, "<bytes>").await
    }

    async fn load(
        &self,
        body: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        name: &str,
    ) -> Result<ImageInfo, EngineError> {
        let opts = ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let failed = |message: String| EngineError::Load {
            source_name: name.to_string(),
            message,
        };
        // Large archives upload for longer than one ordinary request.
        let docker = self.docker.clone().with_timeout(self.cfg.pull_timeout);
        let items: Vec<_> = docker
            .import_image(opts, bollard::body_try_stream(body), None)
            .try_collect()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut refs = Vec::new();
        for i in &items {
            for line in i.stream.as_deref().unwrap_or("").lines() {
                // "Loaded image: name:tag" or "Loaded image ID: sha256:..."
                if let Some(r) = line
                    .strip_prefix("Loaded image ID: ")
                    .or_else(|| line.strip_prefix("Loaded image: "))
                {
                    refs.push(r.trim().to_string());
                }
            }
        }
        let mut ids = BTreeSet::new();
        let mut first = None;
        for r in &refs {
            let info = self.image_info(r).await?;
            ids.insert(info.id.clone());
            first.get_or_insert(info);
        }
        match first {
            Some(info) if ids.len() == 1 => Ok(info),
            _ => Err(EngineError::ArchiveImageCount {
                source_name: name.to_string(),
                count: ids.len(),
                ids: ids.into_iter().collect(),
            }),
        }
    }

    /// `docker save` of one image into `dest`; returns the bytes written.
    pub async fn save_image(&self, reference: &str, dest: &Path) -> Result<u64, EngineError> {
        let io = |e: std::io::Error| EngineError::Io {
            path: dest.to_path_buf(),
            source: e,
        };
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        let docker = self.docker.clone().with_timeout(self.cfg.pull_timeout);
        let mut s = docker.export_image(reference);
        let mut n = 0u64;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| EngineError::api("save image", "image", reference, e))?;
            f.write_all(&chunk).await.map_err(io)?;
            n += chunk.len() as u64;
        }
        f.sync_all().await.map_err(io)?;
        Ok(n)
    }

    /// Removes an image (all its tags when given by id with `force`).
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<(), EngineError> {
        let opts = RemoveImageOptions {
            force,
            ..Default::default()
        };
        self.docker
            .remove_image(reference, Some(opts), None)
            .await
            .map_err(|e| EngineError::api("remove image", "image", reference, e))?;
        Ok(())
    }
}

/// Splits a reference into the `fromImage` and `tag` the pull API takes.
/// A reference without tag or digest gets `latest`: an empty tag would pull
/// every tag of the repository.
fn split_reference(r: &str) -> (String, Option<String>) {
    if r.contains('@') {
        return (r.to_string(), None);
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let name = &r[..r.len() - tag.len() - 1];
            (name.to_string(), Some(tag.to_string()))
        }
        None => (r.to_string(), Some("latest".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()))
        );
        assert_eq!(
            split_reference("localhost:5000/a/b"),
            ("localhost:5000/a/b".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("localhost:5000/a/b:v2"),
            ("localhost:5000/a/b".into(), Some("v2".into()))
        );
        assert_eq!(split_reference("x@sha256:00"), ("x@sha256:00".into(), None));
    }
}
