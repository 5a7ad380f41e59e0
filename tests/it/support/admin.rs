//! The typed admin client: one method per route, answers parsed into the contract's
//! objects, errors into [`ApiError`] (checked to have the contract's error shape).

use std::net::SocketAddr;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{send, Reply, API_KEY};

/// An error answer: its status and the contract body's code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    /// Asserts status and code; the message.
    pub fn is(&self, status: u16, code: &str) -> &str {
        assert_eq!(
            (self.status, self.code.as_str()),
            (status, code),
            "{self:?}"
        );
        &self.message
    }
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    pub id: u32,
    pub name: String,
    pub created_at: String,
}

/// A connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    pub id: u32,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub workspace_id: u32,
    pub created_at: String,
    pub allowed_origins: Vec<String>,
}

/// An API key object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKey {
    pub id: String,
    pub company_id: u32,
    pub workspace_id: Option<u32>,
    pub user_id: String,
    pub key: String,
    #[serde(rename = "whitelistedIPs")]
    pub whitelisted_ips: Vec<String>,
    pub status: String,
    pub description: Option<String>,
    pub api_version: Option<String>,
    pub api_version_updated_at: Option<String>,
    pub api_version_downgrade_not_allowed_after: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// A company; `api_key` only in the answer that creates it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Company {
    pub id: u32,
    pub name: String,
    pub created_at: String,
    pub api_key: Option<ApiKey>,
}

/// One page of API keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPage {
    pub status: u16,
    pub total: usize,
    pub count: usize,
    pub next_url: Option<String>,
    pub previous_url: Option<String>,
    pub data: Vec<ApiKey>,
}

impl KeyPage {
    pub fn ids(&self) -> Vec<String> {
        self.data.iter().map(|k| k.id.clone()).collect()
    }
}

/// Admin calls with one API key (the operator's unless changed), optionally in one
/// workspace (`Intake-Workspace`). `Copy`, like the untyped helper it replaced, so
/// that tests can pass it around freely (other keys are leaked: tests make few).
#[derive(Clone, Copy, Debug)]
pub struct AdminClient {
    pub addr: SocketAddr,
    key: &'static str,
    workspace: Option<u32>,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            key: API_KEY,
            workspace: None,
        }
    }

    /// The same client acting with another API key.
    pub fn as_key(&self, key: &str) -> Self {
        Self {
            key: Box::leak(key.to_string().into_boxed_str()),
            ..*self
        }
    }

    /// The same client acting in a workspace.
    pub fn in_workspace(&self, workspace: u32) -> Self {
        Self {
            workspace: Some(workspace),
            ..*self
        }
    }

    /// One request with this client's key and workspace.
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {}", self.key);
        let ws = self.workspace.map(|w| w.to_string());
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ws) = &ws {
            headers.push(("intake-workspace", ws.as_str()));
        }
        let body = match body {
            Some(v) => {
                headers.push(("content-type", "application/json"));
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        send(self.addr, method, path, &headers, body).await
    }

    /// A request whose success is `status` with a `T` body (or no body for 204).
    async fn typed<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Result<T, ApiError> {
        let reply = self.request(method, path, body).await;
        if reply.status == status {
            let body = if reply.body.is_empty() {
                Value::Null
            } else {
                reply.json()
            };
            return Ok(serde_json::from_value(body).unwrap_or_else(|e| panic!("{path}: {e}")));
        }
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{reply:?}"
        );
        let error = reply.json();
        Err(ApiError {
            status: reply.status,
            code: error["error"]["code"].as_str().expect("error code").into(),
            message: error["error"]["message"]
                .as_str()
                .expect("error message")
                .into(),
        })
    }

    /// Compatibility with the untyped helper: a request in `workspace` with `body`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        workspace: Option<u32>,
        body: Option<Value>,
    ) -> Reply {
        let client = Self { workspace, ..*self };
        client.request(method, path, body).await
    }

    /// [`AdminClient::call`] with another key.
    pub async fn call_as(
        &self,
        key: &str,
        method: &str,
        path: &str,
        workspace: Option<u32>,
        body: Option<Value>,
    ) -> Reply {
        self.as_key(key).call(method, path, workspace, body).await
    }

    pub async fn create_workspace(&self, name: &str) -> Result<Workspace, ApiError> {
        self.typed("POST", "/v1/workspaces", Some(json!({ "name": name })), 201)
            .await
    }

    pub async fn workspaces(&self) -> Result<Vec<Workspace>, ApiError> {
        let list: Value = self.typed("GET", "/v1/workspaces", None, 200).await?;
        Ok(serde_json::from_value(list["workspaces"].clone()).unwrap())
    }

    pub async fn get_workspace(&self, id: u32) -> Result<Workspace, ApiError> {
        self.typed("GET", &format!("/v1/workspaces/{id}"), None, 200)
            .await
    }

    pub async fn delete_workspace(&self, id: u32) -> Result<(), ApiError> {
        self.typed("DELETE", &format!("/v1/workspaces/{id}"), None, 204)
            .await
    }

    pub async fn create_company(&self, name: &str) -> Result<Company, ApiError> {
        self.typed("POST", "/v1/companies", Some(json!({ "name": name })), 201)
            .await
    }

    pub async fn companies(&self) -> Result<Vec<Company>, ApiError> {
        let list: Value = self.typed("GET", "/v1/companies", None, 200).await?;
        Ok(serde_json::from_value(list["companies"].clone()).unwrap())
    }

    pub async fn create_connection(&self, body: Value) -> Result<Connection, ApiError> {
        self.typed("POST", "/v1/connections", Some(body), 201).await
    }

    pub async fn connections(&self) -> Result<Vec<Connection>, ApiError> {
        let list: Value = self.typed("GET", "/v1/connections", None, 200).await?;
        Ok(serde_json::from_value(list["connections"].clone()).unwrap())
    }

    pub async fn get_connection(&self, id: u32) -> Result<Connection, ApiError> {
        self.typed("GET", &format!("/v1/connections/{id}"), None, 200)
            .await
    }

    pub async fn update_connection(&self, id: u32, body: Value) -> Result<Connection, ApiError> {
        self.typed("PUT", &format!("/v1/connections/{id}"), Some(body), 200)
            .await
    }

    pub async fn delete_connection(&self, id: u32) -> Result<(), ApiError> {
        self.typed("DELETE", &format!("/v1/connections/{id}"), None, 204)
            .await
    }

    pub async fn add_write_key(&self, connection: u32) -> Result<String, ApiError> {
        let path = format!("/v1/connections/{connection}/event-write-keys");
        let created: Value = self.typed("POST", &path, None, 201).await?;
        Ok(created["key"].as_str().unwrap().into())
    }

    pub async fn write_keys(&self, connection: u32) -> Result<Vec<String>, ApiError> {
        let path = format!("/v1/connections/{connection}/event-write-keys");
        let list: Value = self.typed("GET", &path, None, 200).await?;
        Ok(serde_json::from_value(list["keys"].clone()).unwrap())
    }

    pub async fn delete_write_key(&self, connection: u32, key: &str) -> Result<(), ApiError> {
        let path = format!("/v1/connections/{connection}/event-write-keys/{key}");
        self.typed("DELETE", &path, None, 204).await
    }

    pub async fn create_api_key(&self, body: Value) -> Result<ApiKey, ApiError> {
        self.typed("POST", "/v1/keys", Some(body), 201).await
    }

    pub async fn api_key(&self, id: &str) -> Result<ApiKey, ApiError> {
        self.typed("GET", &format!("/v1/keys/{id}"), None, 200)
            .await
    }

    pub async fn update_api_key(&self, id: &str, body: Value) -> Result<ApiKey, ApiError> {
        self.typed("PUT", &format!("/v1/keys/{id}"), Some(body), 200)
            .await
    }

    pub async fn delete_api_key(&self, id: &str) -> Result<(), ApiError> {
        self.typed("DELETE", &format!("/v1/keys/{id}"), None, 204)
            .await
    }

    /// `GET` of a keys URL (`/v1/keys?…`, or a page's `nextUrl`).
    pub async fn api_keys(&self, url: &str) -> Result<KeyPage, ApiError> {
        self.typed("GET", url, None, 200).await
    }

    /// A workspace with the given name's id.
    pub async fn workspace(&self) -> u32 {
        self.create_workspace("Test").await.unwrap().id
    }

    /// A connection of the type in `workspace`, and its first write key (if it has keys).
    pub async fn connection(&self, workspace: u32, kind: &str) -> (u32, Option<String>) {
        let client = self.in_workspace(workspace);
        let created = client
            .create_connection(json!({"name": "c", "type": kind}))
            .await
            .unwrap();
        let key = client
            .write_keys(created.id)
            .await
            .ok()
            .map(|keys| keys[0].clone());
        (created.id, key)
    }

    /// A workspace with an sdk connection: (workspace, connection, write key).
    pub async fn sdk_key(&self) -> (u32, u32, String) {
        let ws = self.workspace().await;
        let (id, key) = self.connection(ws, "sdk").await;
        (ws, id, key.unwrap())
    }
}
