//! Per-app secrets: `<state>/secrets/<app>/<NAME>`, mode 0600, changed only
//! by the `secret.set` / `secret.remove` actions (recorded without values).

use std::borrow::Cow;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use weft_kernel::{ActCx, Action, KernelError, KernelResult, KernelView, Principal};
use weft_model::net::valid_secret_name;

/// Largest secret value, bytes.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;

/// Where an app's secrets live.
pub fn app_dir(state: &Path, app: &str) -> PathBuf {
    state.join("secrets").join(app)
}

fn check_names(app: &str, name: &str) -> KernelResult<()> {
    let app_ok = !app.is_empty()
        && app.len() <= 64
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !app_ok {
        return Err(KernelError::Invalid(format!("`{app}` is not an app name")));
    }
    if !valid_secret_name(name) {
        return Err(KernelError::Invalid(format!(
            "`{name}` is not a secret name ([A-Za-z0-9_.-], 1-64 bytes, not starting with `.`)"
        )));
    }
    Ok(())
}

/// Read secret `name` of `app` (`None` when it is not set).
pub fn read(state: &Path, app: &str, name: &str) -> KernelResult<Option<String>> {
    check_names(app, name)?;
    match std::fs::read_to_string(app_dir(state, app).join(name)) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(KernelError::Failed(format!(
            "cannot read secret `{app}/{name}`: {e}"
        ))),
    }
}

/// The names of `app`'s secrets, sorted.
pub fn list(state: &Path, app: &str) -> KernelResult<Vec<String>> {
    let dir = app_dir(state, app);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => {
            return Err(KernelError::Failed(format!(
                "cannot list {}: {e}",
                dir.display()
            )))
        }
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_secret_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// `secret.set`: store a value (replacing any), atomically, 0600.
pub struct SecretSet {
    /// The app.
    pub app: String,
    /// The secret's name.
    pub name: String,
    /// The value (never recorded).
    pub value: String,
}

impl Action for SecretSet {
    type Output = ();
    fn gate_action(&self) -> Cow<'static, str> {
        "secret.set".into()
    }
    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "name": self.name })
    }
    fn authorize(&mut self, _who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        check_names(&self.app, &self.name)?;
        if self.value.len() > MAX_SECRET_BYTES {
            return Err(KernelError::Invalid(format!(
                "a secret holds at most {MAX_SECRET_BYTES} bytes"
            )));
        }
        Ok(())
    }
    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let dir = app_dir(cx.kernel().state_dir(), &self.app);
        write_secret(&dir, &self.name, &self.value)
            .map_err(|e| KernelError::Failed(format!("cannot store secret: {e}")))?;
        cx.record(
            "secret.set",
            &json!({ "app": self.app, "name": self.name, "bytes": self.value.len() }),
        )?;
        Ok(())
    }
}

fn write_secret(dir: &Path, name: &str, value: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(value.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

/// `secret.remove`.
pub struct SecretRemove {
    /// The app.
    pub app: String,
    /// The secret's name.
    pub name: String,
}

impl Action for SecretRemove {
    type Output = ();
    fn gate_action(&self) -> Cow<'static, str> {
        "secret.remove".into()
    }
    fn gate_context(&self) -> Value {
        json!({ "app": self.app, "name": self.name })
    }
    fn authorize(&mut self, _who: &Principal, _k: &KernelView<'_>) -> KernelResult<()> {
        check_names(&self.app, &self.name)
    }
    async fn perform(self, cx: &mut ActCx<'_>) -> KernelResult<()> {
        let path = app_dir(cx.kernel().state_dir(), &self.app).join(&self.name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KernelError::NotFound(format!(
                    "app `{}` has no secret `{}`",
                    self.app, self.name
                )))
            }
            Err(e) => return Err(KernelError::Failed(format!("cannot remove secret: {e}"))),
        }
        cx.record(
            "secret.remove",
            &json!({ "app": self.app, "name": self.name }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_0600_and_listed() {
        let d = tempfile::tempdir().unwrap();
        let dir = app_dir(d.path(), "web");
        write_secret(&dir, "API_KEY", "s3cr3t").unwrap();
        let mode = std::fs::metadata(dir.join("API_KEY"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read(d.path(), "web", "API_KEY").unwrap().as_deref(),
            Some("s3cr3t")
        );
        assert_eq!(list(d.path(), "web").unwrap(), ["API_KEY"]);
        assert_eq!(read(d.path(), "web", "NOPE").unwrap(), None);
        assert!(read(d.path(), "web", "../x").is_err());
        assert!(read(d.path(), "../x", "A").is_err());
    }
}
