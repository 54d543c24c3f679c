//! Dashboard sign-in, sessions, CSRF and the headers of every page.

use std::time::Duration;

use warden_server::server::Options;
use warden_server::store::Role;

use crate::support::{TestApp, create_key};
use crate::ui_support::{Session, get, post, sign_in};

fn options_with(idle: Duration, lifetime: Duration) -> Options {
    let mut options = TestApp::options();
    options.dashboard.session_idle_timeout = idle;
    options.dashboard.session_lifetime = lifetime;
    options
}

async fn trail_actions(app: &TestApp) -> Vec<String> {
    app.store.admin_audit(1, 100).await.unwrap().items.into_iter().map(|e| e.action).collect()
}

each_backend!(signed_out_pages_send_the_browser_to_sign_in, |backend| {
    let app = TestApp::new(backend).await;
    let root = get(&app, "/", None).await;
    assert_eq!((root.status, root.location()), (303, "/ui/"));
    let page = get(&app, "/ui/logs?status=blocked", None).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/ui/login?next=%2Fui%2Flogs");
    // An API key never authorises the dashboard.
    let req = axum::http::Request::get("/ui/")
        .header("authorization", format!("Bearer {}", app.admin_key))
        .body(axum::body::Body::empty())
        .unwrap();
    let page = crate::ui_support::send(&app, req).await;
    assert_eq!(page.status, 303, "a Bearer key must not open a dashboard page");
});

each_backend!(the_sign_in_page_has_the_form_and_the_security_headers, |backend| {
    let app = TestApp::new(backend).await;
    let page = get(&app, "/ui/login", None).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("<label for=\"key\">Admin key</label>"), "{}", page.html);
    assert!(page.html.contains("type=\"password\""));
    assert!(page.html.contains(">Sign in</button>"));
    let csp = page.header("content-security-policy");
    for part in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "CSP lacks {part}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(!page.html.contains("<script>") && !page.html.contains(" style=") && !page.html.contains(" onclick="));
});

each_backend!(a_wrong_unknown_app_or_revoked_key_gets_an_error_and_no_cookie, |backend| {
    let app = TestApp::new(backend).await;
    let (revoked, revoked_id, _) = create_key(&app.store, "gone@example.com", Role::Admin).await;
    assert!(app.store.delete_key(revoked_id, None).await.unwrap());
    let wrong_secret = format!("{}{}", &app.admin_key[..app.admin_key.len() - 4], "zzzz");
    for (key, why) in [
        ("not a key", "malformed"),
        (wrong_secret.as_str(), "wrong secret"),
        (app.app_key.as_str(), "app key"),
        (revoked.as_str(), "revoked key"),
    ] {
        let page = post(&app, "/ui/login", None, &[("key", key)]).await;
        assert_eq!(page.status, 401, "{why}: {}", page.html);
        assert!(page.header("set-cookie").is_empty(), "{why} set a cookie");
        assert!(page.html.contains("role=\"alert\""), "{why}: no error shown");
        assert!(!page.html.contains(key), "{why}: the key was echoed");
    }
    let actions = trail_actions(&app).await;
    assert_eq!(actions.iter().filter(|a| *a == "session.sign_in_failed").count(), 4, "{actions:?}");
});

each_backend!(signing_in_sets_a_strict_http_only_cookie_holding_only_the_session_id, |backend| {
    let app = TestApp::new(backend).await;
    let page = post(&app, "/ui/login", None, &[("key", &app.admin_key), ("next", "/ui/logs")]).await;
    assert_eq!((page.status, page.location()), (303, "/ui/logs"));
    let cookie = page.header("set-cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    assert!(cookie.starts_with("__Host-warden_session="), "{cookie}");
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(value.len(), 43, "256 bits as base64url");
    assert!(!value.contains(&app.admin_key) && !app.admin_key.contains(value));
    // Signing in somewhere else can't send the browser off-site.
    let page = post(&app, "/ui/login", None, &[("key", &app.admin_key), ("next", "https://evil.example/")]).await;
    assert_eq!(page.location(), "/ui/");
    assert!(trail_actions(&app).await.contains(&"session.sign_in".to_owned()));
});

each_backend!(plain_http_cookies_drop_secure_when_configured, |backend| {
    let mut options = TestApp::options();
    options.dashboard.cookie_secure = false;
    let app = TestApp::with_options(backend, options).await;
    let page = post(&app, "/ui/login", None, &[("key", &app.admin_key)]).await;
    let cookie = page.header("set-cookie");
    assert!(cookie.starts_with("warden_session=") && !cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let session = sign_in(&app, &app.admin_key).await;
    assert_eq!(session.get(&app, "/ui/").await.status, 200);
});

each_backend!(writes_need_the_csrf_token_and_this_origin, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    // No token.
    let page = post(&app, "/ui/logout", Some(&session.cookie), &[]).await;
    assert_eq!(page.status, 403, "{}", page.html);
    // A token from another session.
    let other = sign_in(&app, &app.admin_key).await;
    let page = post(&app, "/ui/logout", Some(&session.cookie), &[("csrf", &other.csrf)]).await;
    assert_eq!(page.status, 403);
    // The right token from another origin.
    let req = axum::http::Request::post("/ui/logout")
        .header("host", "warden.test")
        .header("origin", "http://evil.example")
        .header("cookie", &session.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(crate::ui_support::form(&[("csrf", &session.csrf)])))
        .unwrap();
    assert_eq!(crate::ui_support::send(&app, req).await.status, 403);
    // Cross-site fetch metadata wins over a matching Origin.
    let req = axum::http::Request::post("/ui/logout")
        .header("host", "warden.test")
        .header("origin", crate::ui_support::ORIGIN)
        .header("sec-fetch-site", "cross-site")
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(crate::ui_support::send(&app, req).await.status, 403);
    // The session survived all of that.
    assert_eq!(session.get(&app, "/ui/").await.status, 200);
});

each_backend!(signing_out_ends_the_session_everywhere_and_the_old_cookie_fails, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.post(&app, "/ui/logout", &[]).await;
    assert_eq!((page.status, page.location()), (303, "/ui/login"));
    assert!(page.header("set-cookie").contains("Max-Age=0"));
    let replay = session.get(&app, "/ui/").await;
    assert_eq!(replay.status, 303, "the old cookie still works");
    assert!(trail_actions(&app).await.contains(&"session.sign_out".to_owned()));
});

each_backend!(deleting_the_key_ends_its_sessions, |backend| {
    let app = TestApp::new(backend).await;
    let (key, key_id, _) = create_key(&app.store, "ops@example.com", Role::Admin).await;
    let session = sign_in(&app, &key).await;
    assert!(app.store.delete_key(key_id, None).await.unwrap());
    assert_eq!(session.get(&app, "/ui/").await.status, 303);
});

each_backend!(an_idle_session_expires, |backend| {
    let app = TestApp::with_options(backend, options_with(Duration::from_secs(1), Duration::from_secs(3600))).await;
    let session = sign_in(&app, &app.admin_key).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(session.get(&app, "/ui/").await.status, 303);
});

each_backend!(a_session_ends_at_its_lifetime_however_active, |backend| {
    let app = TestApp::with_options(backend, options_with(Duration::from_secs(3600), Duration::from_secs(2))).await;
    let session: Session = sign_in(&app, &app.admin_key).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(session.get(&app, "/ui/").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(session.get(&app, "/ui/").await.status, 303);
});

each_backend!(a_session_cookie_never_authorises_the_admin_api, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, "/api/admin/keys").await;
    assert_eq!(page.status, 401);
});

each_backend!(sign_in_attempts_are_limited_per_address, |backend| {
    let app = TestApp::new(backend).await;
    for _ in 0..10 {
        assert_eq!(post(&app, "/ui/login", None, &[("key", "nope")]).await.status, 401);
    }
    let page = post(&app, "/ui/login", None, &[("key", &app.admin_key)]).await;
    assert_eq!(page.status, 429);
    assert!(page.header("set-cookie").is_empty());
    assert!(!page.header("retry-after").is_empty());
});

each_backend!(unknown_dashboard_paths_are_404_pages_in_the_layout, |backend| {
    let app = TestApp::new(backend).await;
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.get(&app, "/ui/no-such-page").await;
    assert_eq!(page.status, 404);
    assert!(page.html.contains("<nav class=\"nav\"") && page.html.contains("Sign out"), "{}", page.html);
    assert_eq!(get(&app, "/ui/assets/app.0000000000000000.css", None).await.status, 404);
});

each_backend!(assets_have_hashed_long_cached_urls, |backend| {
    let app = TestApp::new(backend).await;
    let page = get(&app, "/ui/login", None).await;
    let at = page.html.find("href=\"/ui/assets/app.").unwrap() + "href=\"".len();
    let url = page.html[at..].split('"').next().unwrap().to_owned();
    let css = get(&app, &url, None).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(css.header("cache-control"), "public, max-age=31536000, immutable");
    assert!(css.html.contains("prefers-color-scheme: dark"));
});

each_backend!(the_dashboard_can_be_turned_off, |backend| {
    let mut options = TestApp::options();
    options.dashboard.enabled = false;
    let app = TestApp::with_options(backend, options).await;
    assert_eq!(get(&app, "/ui/login", None).await.status, 404);
    assert_eq!(get(&app, "/ui/", None).await.status, 404);
    assert_eq!(get(&app, "/", None).await.status, 404);
});

each_backend!(htmx_swaps_error_pages_in_so_a_refused_form_says_why, |backend| {
    // htmx 2 leaves the page as it was on a 4xx/5xx unless told otherwise;
    // the dashboard's error pages must show.
    let app = TestApp::new(backend).await;
    let page = get(&app, "/ui/login", None).await;
    let at = page.html.find("name=\"htmx-config\" content='").unwrap() + "name=\"htmx-config\" content='".len();
    let config: serde_json::Value = serde_json::from_str(page.html[at..].split('\'').next().unwrap()).unwrap();
    let rules = config["responseHandling"].as_array().unwrap();
    for status in ["422", "403", "404", "503"] {
        let rule = rules
            .iter()
            .find(|r| regex_like(r["code"].as_str().unwrap(), status))
            .unwrap_or_else(|| panic!("no rule for {status}"));
        assert_eq!(rule["swap"], true, "{status} is not swapped in");
    }
    assert_eq!(config["allowEval"], false);
});

/// Whether htmx's code pattern (digits and `.` or `[..]` classes) matches.
fn regex_like(pattern: &str, status: &str) -> bool {
    let mut chars = status.chars();
    let mut p = pattern.chars();
    while let Some(c) = p.next() {
        let Some(s) = chars.next() else { return false };
        match c {
            '.' => {}
            '[' => {
                let class: String = p.by_ref().take_while(|c| *c != ']').collect();
                if !class.contains(s) {
                    return false;
                }
            }
            d if d == s => {}
            _ => return false,
        }
    }
    chars.next().is_none()
}

each_backend!(unreadable_forms_and_queries_get_a_page_in_the_layout_not_plain_text, |backend| {
    let app = TestApp::new(backend).await;
    // Not a form.
    let req = axum::http::Request::post("/ui/login")
        .header("host", "warden.test")
        .header("origin", crate::ui_support::ORIGIN)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"key\":\"x\"}"))
        .unwrap();
    let page = crate::ui_support::send(&app, req).await;
    assert_eq!(page.status, 415);
    assert!(page.header("content-type").starts_with("text/html"), "{}", page.html);
    assert!(page.html.contains("role=\"alert\"") && page.html.contains("HTML form"), "{}", page.html);
    // A form without its field.
    let page = post(&app, "/ui/login", None, &[("nokey", "x")]).await;
    assert!(page.header("content-type").starts_with("text/html"), "{}: {}", page.status, page.html);
    assert!((400..500).contains(&page.status));
    // Signed in: the page keeps the navigation.
    let session = sign_in(&app, &app.admin_key).await;
    let page = session.post(&app, "/ui/playground", &[("nothing", "here")]).await;
    assert!(page.header("content-type").starts_with("text/html"), "{}: {}", page.status, page.html);
    assert!(page.html.contains("Sign out"), "{}", page.html);
});
