//! The first API key. A configured `bootstrap_api_key` is created when missing; with
//! none configured and no API key in the store, one is generated, printed once to
//! stderr and written to `<data_dir>/bootstrap-api-key` (mode 0600). Its company,
//! "default", is the operator company.

use std::io::Write;
use std::path::Path;

use super::{Store, StoreError};
use crate::model::{ApiKey, ApiKeyStatus, Id};
use crate::{clock, secrets};

/// File the generated key is written to, under the data dir.
pub const GENERATED_KEY_FILE: &str = "bootstrap-api-key";

/// Makes sure an operator API key exists; returns the generated key, if one was made.
pub async fn ensure_operator_key(
    store: &dyn Store,
    configured: Option<&str>,
    data_dir: &Path,
) -> Result<Option<String>, StoreError> {
    let (secret, generated) = match configured {
        Some(key) => {
            let hash = secrets::hash_hex(&secrets::hash_api_key(key));
            if store.api_key_by_hash(hash).await?.is_some() {
                return Ok(None);
            }
            (key.to_string(), false)
        }
        None if store.has_api_keys().await? => return Ok(None),
        None => (secrets::new_api_key(), true),
    };
    let record = new_api_key_record(&secret, 0, None, "bootstrap".into());
    let operator = store
        .list_companies()
        .await?
        .into_iter()
        .find(|c| c.operator);
    match operator {
        Some(company) => {
            store
                .create_api_key(ApiKey {
                    company_id: company.id,
                    ..record
                })
                .await?;
        }
        None => {
            store
                .create_company("default".into(), true, Some(record))
                .await?;
        }
    }
    if !generated {
        tracing::info!(key = %secrets::redact(&secret), "bootstrap API key created");
        return Ok(None);
    }
    write_key_file(&data_dir.join(GENERATED_KEY_FILE), &secret)
        .map_err(|e| StoreError::Internal(format!("writing {GENERATED_KEY_FILE}: {e}")))?;
    eprintln!(
        "intake: generated the first API key (shown once, also in {}):\n{secret}",
        data_dir.join(GENERATED_KEY_FILE).display()
    );
    Ok(Some(secret))
}

/// A fresh, active API key record for `secret`.
pub fn new_api_key_record(
    secret: &str,
    company_id: Id,
    workspace_id: Option<Id>,
    user_id: String,
) -> ApiKey {
    let now = clock::now();
    ApiKey {
        id: uuid::Uuid::new_v4().to_string(),
        company_id,
        workspace_id,
        user_id,
        key_hash: secrets::hash_hex(&secrets::hash_api_key(secret)),
        key_tail: secrets::tail4(secret),
        whitelisted_ips: Vec::new(),
        status: ApiKeyStatus::Active,
        description: None,
        api_version: None,
        api_version_updated_at: None,
        api_version_downgrade_not_allowed_after: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

fn write_key_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}
