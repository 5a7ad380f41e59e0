//! The first API key. A configured `bootstrap_api_key` is created when missing and
//! made active again when it was deleted, so that a restart with it always lets the
//! operator in. With none configured and no API key at all, one is generated, printed
//! once to stderr and written to `<data_dir>/bootstrap-api-key` (a fresh file of mode
//! 0600, renamed into place: an existing file or a symlink there is replaced, never
//! written through). Its company, "default", is the operator company.

use std::io::Write;
use std::path::Path;

use super::api_keys::new_api_key_record;
use super::{Control, ControlError};
use crate::model::ApiKeyStatus;
use crate::secrets;
use crate::store::plan::{Plan, Write as PlanWrite};
use crate::store::StoreError;

/// File the generated key is written to, under the data dir.
const GENERATED_KEY_FILE: &str = "bootstrap-api-key";

impl Control {
    /// Makes sure an operator API key exists; returns the generated key, if one was made.
    pub(crate) async fn ensure_operator_key(
        &self,
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<Option<String>, ControlError> {
        let Some(secret) = configured else {
            if self.store.has_api_keys().await? {
                return Ok(None);
            }
            let secret = secrets::new_api_key();
            self.create_company_with_key("default".into(), true, secret.clone(), "bootstrap")
                .await?;
            let path = data_dir.join(GENERATED_KEY_FILE);
            write_key_file(&path, &secret).map_err(|e| StoreError::Unavailable(e.into()))?;
            eprintln!(
                "intake: generated the first API key (shown once, also in {}):\n{secret}",
                path.display()
            );
            return Ok(Some(secret));
        };
        let hash = secrets::hash_hex(&secrets::hash_api_key(secret));
        match self.store.api_key_by_hash(hash).await? {
            Some(key) if key.status == ApiKeyStatus::Active => {}
            Some(key) => {
                self.reactivate_api_key(&key.id).await?;
                tracing::info!(key = %secrets::redact(secret), "bootstrap API key made active again");
            }
            None => {
                self.add_operator_key(secret).await?;
                tracing::info!(key = %secrets::redact(secret), "bootstrap API key created");
            }
        }
        Ok(None)
    }

    /// Adds `secret` to the operator company, creating the company if there is none.
    async fn add_operator_key(&self, secret: &str) -> Result<(), ControlError> {
        let operator = self
            .store
            .companies()
            .await?
            .into_iter()
            .find(|c| c.operator);
        let Some(company) = operator else {
            self.create_company_with_key("default".into(), true, secret.into(), "bootstrap")
                .await?;
            return Ok(());
        };
        let key = new_api_key_record(secret, company.id, None, "bootstrap".into());
        let mut plan = Some(Plan {
            preconditions: Vec::new(),
            changes: vec![crate::index::feed::Change::ApiKeyPut {
                auth: key.auth(true),
            }],
            writes: vec![PlanWrite::PutApiKey(key)],
        });
        self.decide_and_commit(|| {
            let decided = plan.take().map(|plan| (plan, ())).ok_or(ControlError::Busy);
            Box::pin(async move { decided })
        })
        .await
    }
}

/// Writes the key to a new file of mode 0600 under a temporary name (create-new: it
/// never opens an existing file or follows a link), syncs it, and renames it over
/// `path`.
fn write_key_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{GENERATED_KEY_FILE}.{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        writeln!(file, "{secret}")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn the_key_file_is_fresh_and_private_even_over_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_key_file(&path, "api_new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "api_new\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        std::os::unix::fs::symlink(&target, &path).unwrap();
        write_key_file(&path, "api_new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(mode(&path), 0o600);
    }
}
