//! The labels that tie a container to its kernel, app and service, and the
//! deterministic container name that keeps a service from running twice.

use std::collections::{BTreeMap, HashMap};

use crate::error::EngineError;

/// Label: the id of the kernel that owns the container.
pub const LABEL_KERNEL: &str = "weft.kernel";
/// Label: the app name.
pub const LABEL_APP: &str = "weft.app";
/// Label: the service name within the app.
pub const LABEL_SERVICE: &str = "weft.service";
/// Label: the app version.
pub const LABEL_VERSION: &str = "weft.version";
/// Label: the image reference as the manifest gave it (the container itself
/// is created from the resolved image id).
pub const LABEL_IMAGE: &str = "weft.image";

/// The labels of one service's container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceLabels {
    kernel: String,
    app: String,
    service: String,
    version: String,
}

impl ServiceLabels {
    /// Checks and builds the labels. Kernel ids are `[A-Za-z0-9-]`, app and
    /// service names `[a-z0-9-]` (as in `weftapp.toml`), each 1 to 64
    /// characters, so the container name `weft_<kernel>_<app>_<service>` is
    /// unambiguous; the version is 1 to 128 printable characters.
    pub fn new(kernel: &str, app: &str, service: &str, version: &str) -> Result<Self, EngineError> {
        check(LABEL_KERNEL, kernel, |c| {
            c.is_ascii_alphanumeric() || c == '-'
        })?;
        check(LABEL_APP, app, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })?;
        check(LABEL_SERVICE, service, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        })?;
        if version.is_empty()
            || version.len() > 128
            || version.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(EngineError::Label {
                key: LABEL_VERSION,
                value: version.to_string(),
                reason: "expected 1 to 128 printable characters without spaces",
            });
        }
        Ok(ServiceLabels {
            kernel: kernel.into(),
            app: app.into(),
            service: service.into(),
            version: version.into(),
        })
    }

    /// Reads the labels back from a container's label map; `None` when any
    /// is missing or malformed (not a container Weft created).
    pub fn from_map<S: std::hash::BuildHasher>(m: &HashMap<String, String, S>) -> Option<Self> {
        ServiceLabels::new(
            m.get(LABEL_KERNEL)?,
            m.get(LABEL_APP)?,
            m.get(LABEL_SERVICE)?,
            m.get(LABEL_VERSION)?,
        )
        .ok()
    }

    /// The kernel id.
    pub fn kernel(&self) -> &str {
        &self.kernel
    }

    /// The app name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The app version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `weft_<kernel>_<app>_<service>`: one container per service and
    /// kernel, whatever the version, so a second create fails with
    /// [`EngineError::NameInUse`] instead of duplicating the service.
    pub fn container_name(&self) -> String {
        format!("weft_{}_{}_{}", self.kernel, self.app, self.service)
    }

    /// The four labels as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_KERNEL.to_string(), self.kernel.clone()),
            (LABEL_APP.to_string(), self.app.clone()),
            (LABEL_SERVICE.to_string(), self.service.clone()),
            (LABEL_VERSION.to_string(), self.version.clone()),
        ])
    }

    /// A filter matching exactly this service's container.
    pub fn filter(&self) -> LabelFilter {
        LabelFilter::kernel(&self.kernel)
            .app(&self.app)
            .service(&self.service)
    }
}

fn check(key: &'static str, v: &str, ok: impl Fn(char) -> bool) -> Result<(), EngineError> {
    if v.is_empty() || v.len() > 64 || !v.chars().all(ok) {
        return Err(EngineError::Label {
            key,
            value: v.to_string(),
            reason: "expected 1 to 64 characters of [a-z0-9-] ([A-Za-z0-9-] for kernel ids)",
        });
    }
    Ok(())
}

/// Which containers to list: always one kernel's, optionally narrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    kernel: String,
    app: Option<String>,
    service: Option<String>,
    version: Option<String>,
}

impl LabelFilter {
    /// Every container of this kernel.
    pub fn kernel(kernel: &str) -> Self {
        LabelFilter {
            kernel: kernel.to_string(),
            app: None,
            service: None,
            version: None,
        }
    }

    /// Only this app's.
    pub fn app(mut self, app: &str) -> Self {
        self.app = Some(app.to_string());
        self
    }

    /// Only this service's.
    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }

    /// Only this version's.
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_string());
        self
    }

    /// The engine's `label=key=value` filter values.
    pub(crate) fn to_engine(&self) -> Vec<String> {
        let mut v = vec![format!("{LABEL_KERNEL}={}", self.kernel)];
        for (k, val) in [
            (LABEL_APP, &self.app),
            (LABEL_SERVICE, &self.service),
            (LABEL_VERSION, &self.version),
        ] {
            if let Some(val) = val {
                v.push(format!("{k}={val}"));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_round_trip() {
        let l = ServiceLabels::new("k1", "my-app", "web", "1.2.0").unwrap();
        assert_eq!(l.container_name(), "weft_k1_my-app_web");
        let m: HashMap<String, String> = l.to_map().into_iter().collect();
        assert_eq!(ServiceLabels::from_map(&m), Some(l));
        assert!(ServiceLabels::new("k_1", "a", "b", "1").is_err());
        assert!(ServiceLabels::new("k", "A", "b", "1").is_err());
        assert!(ServiceLabels::new("k", "a", "b", "1 2").is_err());
    }
}
