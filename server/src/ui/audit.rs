//! `/ui/audit`: the admin trail, newest first, filtered by action and actor
//! (the query string, as the admin API reads it), in keyset pages. Each
//! change shows its actor (key name and id), action, target, time, and the
//! values before and after it; a value in force is shown with where it came
//! from (`file`, `global`, `override`, `default`), so an inherited toggle
//! reads as what it was, not as an empty override.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;
use uuid::Uuid;

use super::logs::{Keyset, query};
use super::page::{Nav, Shell, render};
use super::{UiError, UiUser};
use crate::http::admin::{AdminFilterParams, CursorParams};
use crate::state::AppState;
use crate::store::{AdminEntry, Cursor};

/// Entries on a page.
const PAGE_SIZE: u32 = 20;

/// The trail's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/audit", get(list))
}

/// One change, as shown.
struct Change {
    time: String,
    time_iso: String,
    actor_name: Option<String>,
    actor_id: Option<Uuid>,
    action: String,
    target: String,
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
}

/// A recorded value as `(field, shown value)` pairs: each field of an
/// object, a `{"value", "source"}` pair as "value (source)".
fn described(v: Option<&Value>) -> Vec<(String, String)> {
    let shown = |v: &Value| match v {
        Value::Object(m) if m.len() == 2 && m.contains_key("value") && m.contains_key("source") => {
            let value = m.get("value").map(plain).unwrap_or_default();
            let source = m.get("source").map(plain).unwrap_or_default();
            format!("{value} ({source})")
        }
        other => plain(other),
    };
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), shown(v))).collect(),
        Some(other) => vec![(String::new(), shown(other))],
    }
}

/// A JSON value as text: strings without quotes, the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Change {
    fn of(e: AdminEntry) -> Self {
        Self {
            time: e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            time_iso: e.created_at.to_rfc3339(),
            actor_name: e.actor_key_name,
            actor_id: e.actor_key_id,
            before: described(e.before.as_ref().map(|j| &j.0)),
            after: described(e.after.as_ref().map(|j| &j.0)),
            action: e.action,
            target: e.target,
        }
    }
}

/// `/ui/audit`.
#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    shell: Shell,
    f: AdminFilterParams,
    actions: Vec<String>,
    changes: Vec<Change>,
    newer: Option<String>,
    older: Option<String>,
}

/// A trail URL with the filters and one cursor.
fn link(f: &AdminFilterParams, cursor: (&str, i64)) -> String {
    let mut url = url::form_urlencoded::Serializer::new(String::from("/ui/audit?"));
    if let Some(a) = &f.action {
        url.append_pair("action", a);
    }
    if let Some(a) = &f.actor {
        url.append_pair("actor", a);
    }
    url.append_pair(cursor.0, &cursor.1.to_string());
    url.finish()
}

/// `GET /ui/audit`.
async fn list(State(state): State<AppState>, user: UiUser, uri: Uri) -> Response {
    let shown = async {
        let f: AdminFilterParams = query(&uri)?;
        let c: CursorParams = query(&uri)?;
        let filter = f.filter()?;
        let mut cursor = c.cursor()?;
        let mut fetched = state.store.admin_trail_page(&filter, cursor, PAGE_SIZE + 1).await?;
        if matches!(cursor, Cursor::After(_)) && fetched.len() <= PAGE_SIZE as usize {
            cursor = Cursor::Newest;
            fetched = state.store.admin_trail_page(&filter, cursor, PAGE_SIZE + 1).await?;
        }
        let page = Keyset::of(fetched, cursor, PAGE_SIZE, |e| e.id);
        Ok::<_, UiError>(render(&AuditPage {
            shell: Shell::new(&user, Nav::Audit, "Audit"),
            actions: state.store.admin_actions().await?,
            changes: page.rows.into_iter().map(Change::of).collect(),
            newer: page.newer.map(|id| link(&f, ("after", id))),
            older: page.older.map(|id| link(&f, ("before", id))),
            f,
        }))
    };
    shown.await.unwrap_or_else(|e| e.page(Some(&user)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::described;

    #[test]
    fn values_in_force_read_with_their_source() {
        let v = json!({"enabled": {"value": false, "source": "file"}, "score": 50, "name": "x"});
        let shown = described(Some(&v));
        assert!(shown.contains(&("enabled".to_owned(), "false (file)".to_owned())));
        assert!(shown.contains(&("score".to_owned(), "50".to_owned())));
        assert!(shown.contains(&("name".to_owned(), "x".to_owned())));
        assert!(described(None).is_empty());
    }
}
