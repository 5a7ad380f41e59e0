//! Companies: the operator company's keys create tenants, each with a first API key
//! (userId "owner"). Companies are never deleted.

use super::api_keys::new_api_key_record;
use super::fields::Name;
use super::{Caller, Control, ControlError};
use crate::clock;
use crate::index::feed::Change;
use crate::model::{ApiKey, Company};
use crate::secrets;
use crate::store::plan::{Plan, Sequence, Write};

/// A new company with its first key, whose secret is shown this once.
pub(crate) struct NewCompany {
    pub(crate) company: Company,
    pub(crate) key: ApiKey,
    pub(crate) secret: String,
}

impl Control {
    /// Every company, oldest first (operator keys only).
    pub(crate) async fn companies(&self, caller: &Caller) -> Result<Vec<Company>, ControlError> {
        caller.require_operator()?;
        Ok(self.store.companies().await?)
    }

    /// A tenant company and its owner's API key (operator keys only).
    pub(crate) async fn create_company(
        &self,
        caller: &Caller,
        name: Name,
    ) -> Result<NewCompany, ControlError> {
        caller.require_operator()?;
        self.create_company_with_key(name.0, false, secrets::new_api_key(), "owner")
            .await
    }

    /// A company with a first, active key for `secret`; no caller check (bootstrap).
    pub(super) async fn create_company_with_key(
        &self,
        name: String,
        operator: bool,
        secret: String,
        user_id: &str,
    ) -> Result<NewCompany, ControlError> {
        self.decide_and_commit(|| {
            let (name, secret) = (name.clone(), secret.clone());
            Box::pin(async move {
                let company = Company {
                    id: self.store.next_id(Sequence::Company).await?,
                    name,
                    operator,
                    created_at: clock::now(),
                };
                let key = new_api_key_record(&secret, company.id, None, user_id.into());
                let plan = Plan {
                    preconditions: Vec::new(),
                    writes: vec![
                        Write::PutCompany(company.clone()),
                        Write::PutApiKey(key.clone()),
                    ],
                    changes: vec![Change::ApiKeyPut {
                        auth: key.auth(operator),
                    }],
                };
                Ok((
                    plan,
                    NewCompany {
                        company,
                        key,
                        secret,
                    },
                ))
            })
        })
        .await
    }
}
