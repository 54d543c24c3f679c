//! The service status, as `GET /api/admin/status` reports it (the build
//! version, the database backend and whether it answers: a database that
//! is down is reported, not a failure of the status itself) and as the
//! dashboard shows it: a failed reload's diagnostics in full, the files,
//! the rate-limit backend, and the **Verify audit log** button recording
//! a verification whose result the page then shows.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;

use crate::support::TestApp;
use crate::ui_support::sign_in;

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

each_backend!(the_status_page_shows_a_failed_reload_with_its_diagnostics, |backend| {
    let dir = crate::support::policy_dir_copy();
    let options = warden_server::server::Options { policy_dir: Some(dir.clone()), ..TestApp::options() };
    let app = TestApp::with_options(backend, options).await;
    let risk = std::fs::read_to_string(dir.join("risk.warden")).unwrap();
    std::fs::write(dir.join("risk.warden"), risk.replace("score +70", "score ++70")).unwrap();
    app.state.reloader.as_ref().unwrap().reload(&app.state).await;
    let session = sign_in(&app, &app.admin_key).await;
    for path in ["/ui/status", "/ui/"] {
        let page = session.get(&app, path).await;
        assert_eq!(page.status, 200, "{}", page.html);
        let html = &page.html;
        assert!(html.contains("The last reload was refused"), "{html}");
        let pre = html.split("<pre class=\"diagnostics\"").nth(1).expect("the diagnostics in a <pre>");
        let pre = pre.split_once('>').unwrap().1.split("</pre>").next().unwrap();
        assert!(pre.contains("risk.warden:") && pre.contains("syntax error"), "{pre}");
        assert!(html.contains(app.state.live.load().policy.version()), "the last good version is shown");
    }
    let page = session.get(&app, "/ui/status").await;
    for fact in
        ["base.warden", "risk.warden", env!("CARGO_PKG_VERSION"), "Failed authentications", "Rate-limit backend"]
    {
        assert!(page.html.contains(fact), "{fact} missing: {}", page.html);
    }
    assert!(page.html.contains("local <span class=\"badge ok\">local</span>"), "{}", page.html);
    let _ = std::fs::remove_dir_all(dir);
});

each_backend!(the_verify_button_records_a_verification_and_shows_its_result, |backend| {
    let app = TestApp::new(backend).await;
    app.store.insert_audit(&[crate::support::audit_record(warden_server::store::now())]).await.unwrap();
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, "/ui/status").await;
    assert!(
        page.html.contains("No verification has run yet") && page.html.contains(">Verify audit log</button>"),
        "{}",
        page.html
    );
    let posted = session.post(&app, "/ui/status/verify", &[]).await;
    assert_eq!((posted.status, posted.location()), (303, "/ui/status"), "{}", posted.html);
    let deadline = Instant::now() + Duration::from_secs(20);
    let record = loop {
        if let Some(v) = app.store.last_verification().await.unwrap() {
            if v.finished_at.is_some() {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "the verification did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((record.source.as_str(), record.ok), ("dashboard", Some(true)));
    // The running flag clears just after the record is written.
    while crate::ui_support::get(&app, "/ui/status", Some(&session.cookie)).await.html.contains("Verifying both chains")
    {
        assert!(Instant::now() < deadline, "still shown as running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = session.get(&app, "/ui/status").await;
    assert!(page.html.contains("Every link holds:"), "{}", page.html);
    assert!(page.html.contains("from dashboard"), "{}", page.html);
    // The panel alone, for htmx; a plain browser request gets the page.
    let partial = session.get(&app, "/ui/status/verification").await;
    assert_eq!((partial.status, partial.location()), (303, "/ui/status"));
    let req = Request::get("/ui/status/verification")
        .header("host", "warden.test")
        .header("cookie", &session.cookie)
        .header("hx-request", "true")
        .body(Body::empty())
        .unwrap();
    let partial = crate::ui_support::send(&app, req).await;
    assert_eq!(partial.status, 200, "{}", partial.html);
    assert!(partial.html.trim_start().starts_with("<section id=\"verification\""), "{}", partial.html);
    assert!(
        partial.html.contains("Every link holds:") && !partial.html.contains("hx-trigger"),
        "not polling once done"
    );
});

each_backend!(a_viewer_sees_no_verify_button_and_gets_403_for_it_but_may_use_the_playground, |backend| {
    let app = TestApp::new(backend).await;
    let (viewer, _, _) =
        crate::support::create_key(&app.store, "viewer@example.com", warden_server::store::Role::Viewer).await;
    let session = sign_in(&app, &viewer).await;
    let page = session.get(&app, "/ui/status").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(!page.html.contains("Verify audit log</button>"), "{}", page.html);
    let posted = session.post(&app, "/ui/status/verify", &[]).await;
    assert_eq!(posted.status, 403, "{}", posted.html);
    assert!(app.store.last_verification().await.unwrap().is_none(), "nothing was started");
    let decided =
        session.post(&app, "/ui/playground", &[("body", r#"{"model":"gpt-4","operation":"classify"}"#)]).await;
    assert_eq!(decided.status, 200, "{}", decided.html);
    assert!(decided.html.contains("<span class=\"badge allowed\">allowed</span>"), "{}", decided.html);
});
