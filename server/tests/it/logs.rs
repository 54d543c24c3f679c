//! What the service logs about a request: its method, route template and
//! request id, never the path or query as sent, since a key pasted into a
//! URL by mistake must not land in the log.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use tracing_subscriber::EnvFilter;
use warden_server::config::LogFormat;

use crate::support::{Backend, TestApp};

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// One thread: the subscriber set for this test sees every request it sends.
#[tokio::test(flavor = "current_thread")]
async fn logs_name_the_route_template_never_the_path_or_query_as_sent() {
    for format in [LogFormat::Human, LogFormat::Json] {
        let app = TestApp::new(Backend::Sqlite).await;
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = warden_server::telemetry::subscriber(format, EnvFilter::new("debug"), move || sink.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        // Callsites first reached by another test's thread, with no
        // subscriber there, may have cached "never"; ask them again.
        tracing::callsite::rebuild_interest_cache();
        let pasted_key = format!("wdn_{}_PastedSecretInThePath0123456789abcdef", uuid::Uuid::new_v4().simple());
        let customer = app.customer_id;
        let requests = [
            // No such route: a key pasted after the endpoint.
            Request::post(format!("/v1/check/{pasted_key}")).body(Body::empty()).unwrap(),
            // A real route, with a secret in the query and an id in the path.
            Request::get(format!("/api/admin/customers/{customer}?x=QuerySecret0123456789"))
                .header("authorization", format!("Bearer {}", app.admin_key))
                .body(Body::empty())
                .unwrap(),
            Request::post("/v1/check?api_key=AnotherQuerySecret987")
                .header("authorization", format!("Bearer {}", app.app_key))
                .body(Body::from(r#"{"model":"gpt-4","operation":"classify"}"#))
                .unwrap(),
        ];
        let mut statuses = Vec::new();
        for req in requests {
            statuses.push(app.send(req).await.0);
        }
        assert_eq!(statuses, [404, 200, 200]);
        drop(_guard);
        let log = capture.text();
        // The requests were logged, under their route templates …
        for route in ["unmatched", "/api/admin/customers/{id}", "/v1/check"] {
            assert!(log.contains(route), "{format:?}: `{route}` is not in the log:\n{log}");
        }
        // … and nothing the client put in the URL was.
        for secret in ["PastedSecretInThePath", "QuerySecret", "AnotherQuerySecret", &customer.to_string()] {
            assert!(!log.contains(secret), "{format:?}: `{secret}` is in the log:\n{log}");
        }
    }
}

each_backend!(a_blank_typed_filter_is_refused_by_the_api_and_ignored_by_the_dashboard_form, |backend| {
    let app = crate::support::TestApp::new(backend).await;
    for (path, name) in [
        ("/api/admin/logs?to=", "to"),
        ("/api/admin/logs?from=%20", "from"),
        ("/api/admin/logs?customer_id=", "customer_id"),
        ("/api/admin/logs?status=", "status"),
        ("/api/admin/audit?actor=", "actor"),
    ] {
        let (status, body) = crate::admin::call(&app, &app.admin_key, "GET", path, None).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["field"], name, "{path}: {body}");
    }
    let (status, _) = crate::admin::call(&app, &app.admin_key, "GET", "/api/admin/logs?model=", None).await;
    assert_eq!(status, 200, "a blank free-text filter is an empty string, which the schema allows");
    let session = crate::ui_support::sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, "/ui/logs?status=&model=&to=&from=&customer_id=").await;
    assert_eq!(page.status, 200, "{}", page.html);
});
