//! The service status, as `GET /api/admin/status` reports it: the build
//! version, the database backend and whether it answers (a database that
//! is down is reported, not a failure of the status itself).

use axum::body::Body;
use axum::http::Request;

use crate::support::TestApp;

fn admin_get(app: &TestApp, path: &str) -> Request<Body> {
    Request::get(path).header("authorization", format!("Bearer {}", app.admin_key)).body(Body::empty()).unwrap()
}

each_backend!(the_status_names_the_build_and_the_database_state_even_when_it_is_down, |backend| {
    let app = TestApp::new(backend).await;
    let (code, _, status) = app.send(admin_get(&app, "/api/admin/status")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["database_state"], "up");
    assert_eq!(status["audit_verification_running"], false);
    assert!(status["rate_limit"]["auth_failures"].is_object(), "{status}");
    // The key was authenticated before the outage and stays cached; the
    // pool closing makes every query fail at once.
    app.store.close().await;
    let (code, _, status) = app.send(admin_get(&app, "/api/admin/status")).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["database_state"], "unavailable");
    assert_eq!(status["database"], backend_name(backend));
    assert!(status["audit_verification"].is_null());
});

fn backend_name(backend: crate::support::Backend) -> &'static str {
    match backend {
        crate::support::Backend::Sqlite => "sqlite",
        crate::support::Backend::Postgres => "postgres",
    }
}
