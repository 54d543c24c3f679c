//! The Keys page: a new key is shown once (no-store, never again, never in
//! the list), works at once; rotation with a grace period keeps the old
//! secret working; deletion after confirming makes the key fail; rotating
//! or deleting a key ends its dashboard sessions; a viewer sees no write
//! control and every write is refused; a write without the CSRF token is
//! refused.

use warden_server::store::Role;

use crate::support::{TestApp, create_key};
use crate::ui_support::{Page, Session, post, sign_in};

const ALLOWED: &str = r#"{"model":"gpt-4","operation":"classify"}"#;

/// The text of the element with id `id` (`<code id="new-key">…</code>`).
pub(crate) fn element(page: &Page, id: &str) -> Option<String> {
    let open = format!("id=\"{id}\">");
    let at = page.html.find(&open)? + open.len();
    Some(page.html[at..].split('<').next()?.to_owned())
}

/// Creates a key through the form; returns its reveal URL.
async fn create(app: &TestApp, s: &Session, name: &str, role: &str) -> String {
    let customer = app.customer_id.to_string();
    let page = s.post(app, "/ui/keys", &[("name", name), ("customer_id", &customer), ("role", role)]).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let to = page.location().to_owned();
    assert!(to.starts_with("/ui/keys/") && to.ends_with("/new"), "{to}");
    to
}

/// Opens a reveal page and returns the key it shows.
async fn reveal(app: &TestApp, s: &Session, url: &str) -> String {
    let page = s.get(app, url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.header("cache-control"), "no-store");
    let key = element(&page, "new-key").expect("the reveal page shows the key");
    assert!(page.html.contains("data-copy=\"new-key\""), "a copy button");
    assert!(key.starts_with("wdn_"), "{key}");
    key
}

each_backend!(a_new_key_is_shown_once_and_works_at_once, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let list = s.get(&app, "/ui/keys").await;
    assert_eq!(list.status, 200);
    for text in [">Create</button>", "name=\"customer_id\"", "value=\"viewer\"", "class=\"table-wrap\"", ">Rotate<"] {
        assert!(list.html.contains(text), "the keys page lacks {text}");
    }
    let url = create(&app, &s, "ci deploy", "app").await;
    let key = reveal(&app, &s, &url).await;
    // Never again: not on a reload of the same URL…
    let again = s.get(&app, &url).await;
    assert_eq!(again.status, 200);
    assert!(element(&again, "new-key").is_none() && !again.html.contains(&key));
    assert!(again.html.contains("shown once"), "{}", again.html);
    assert!(again.html.contains("Rotate the key if you lost it"));
    // …nor in the list, which shows the key's row.
    let list = s.get(&app, "/ui/keys").await;
    let secret = key.rsplit('_').next().unwrap();
    assert!(!list.html.contains(secret), "the list must never hold the secret");
    assert!(list.html.contains("ci deploy"));
    // The key works on /v1/check right away.
    assert_eq!(app.check(&key, ALLOWED).await.0, 200);
    // The change is in the admin trail with the signed-in key as the actor.
    let trail = app.store.admin_audit(1, 50).await.unwrap().items;
    assert!(trail.iter().any(|e| e.action == "key.create" && e.actor_key_id.is_some()));
});

each_backend!(another_session_cannot_collect_a_secret, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let other = sign_in(&app, &app.admin_key).await;
    let url = create(&app, &s, "mine", "app").await;
    let page = other.get(&app, &url).await;
    assert!(element(&page, "new-key").is_none(), "another session must not see the key");
    reveal(&app, &s, &url).await;
});

each_backend!(the_list_filters_by_customer_and_the_form_says_what_is_wrong, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let (_, other_id, other_customer) = create_key(&app.store, "other@example.com", Role::App).await;
    let page = s.get(&app, &format!("/ui/keys?customer_id={}", app.customer_id)).await;
    assert!(page.html.contains(&app.app_key_id.to_string()));
    assert!(!page.html.contains(&other_id.to_string()), "the filter keeps other customers' keys out");
    let page = s.get(&app, &format!("/ui/keys?customer_id={other_customer}")).await;
    assert!(page.html.contains(&other_id.to_string()) && !page.html.contains(&app.app_key_id.to_string()));
    // A blank name: 422, the form kept as typed, nothing made.
    let before = app.store.list_keys(None, 1, 100).await.unwrap().total;
    let customer = app.customer_id.to_string();
    let page = s.post(&app, "/ui/keys", &[("name", "  "), ("customer_id", &customer), ("role", "viewer")]).await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("class=\"alert error\""));
    assert!(page.html.contains("value=\"viewer\" selected"), "the role chosen is kept");
    let page = s.post(&app, "/ui/keys", &[("name", "x"), ("customer_id", &customer), ("role", "root")]).await;
    assert_eq!(page.status, 422);
    assert_eq!(app.store.list_keys(None, 1, 100).await.unwrap().total, before);
    // Names are text, not markup.
    let url = create(&app, &s, "<b>ops</b>", "app").await;
    s.get(&app, &url).await;
    let list = s.get(&app, "/ui/keys").await;
    assert!(list.html.contains("ops") && !list.html.contains("<b>ops"), "escaped");
    // A POST that is not a form: 422 in the layout, nothing made.
    let req = axum::http::Request::post("/ui/keys")
        .header("host", "warden.test")
        .header("origin", crate::ui_support::ORIGIN)
        .header("cookie", &s.cookie)
        .header("x-csrf-token", &s.csrf)
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let page = crate::ui_support::send(&app, req).await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("form post"));
});

each_backend!(the_key_list_pages_by_50_keeping_the_filter, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    for _ in 0..50 {
        create_key(&app.store, "app@example.com", Role::App).await;
    }
    let first = s.get(&app, "/ui/keys").await;
    assert!(first.html.contains("52 keys"), "two from the test app and 50 more");
    assert!(first.html.contains("rel=\"next\" href=\"/ui/keys?page=2\""), "{}", first.html);
    assert!(!first.html.contains("rel=\"prev\""));
    let filtered = s.get(&app, &format!("/ui/keys?customer_id={}&page=2", app.customer_id)).await;
    let prev = format!("rel=\"prev\" href=\"/ui/keys?customer_id={}&#38;page=1\"", app.customer_id);
    assert!(filtered.html.contains(&prev), "{}", filtered.html);
    assert_eq!(filtered.html.matches("<tr>").count(), 2, "the header and the 51st key of this customer");
});

each_backend!(rotate_with_grace_then_delete_after_confirming, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let url = create(&app, &s, "rotating", "app").await;
    let old = reveal(&app, &s, &url).await;
    let id = url.trim_start_matches("/ui/keys/").trim_end_matches("/new").to_owned();
    let form = s.get(&app, &format!("/ui/keys/{id}/rotate")).await;
    assert_eq!(form.status, 200);
    assert!(form.html.contains(">Rotate</button>") && form.html.contains(">Cancel</a>"));
    assert!(form.html.contains("name=\"grace_seconds\""));
    let bad = s.post(&app, &format!("/ui/keys/{id}/rotate"), &[("grace_seconds", "604801")]).await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    let rotated = s.post(&app, &format!("/ui/keys/{id}/rotate"), &[("grace_seconds", "600")]).await;
    assert_eq!((rotated.status, rotated.location()), (303, url.as_str()));
    let new = reveal(&app, &s, &url).await;
    assert_ne!(new, old);
    assert!(element(&s.get(&app, &url).await, "new-key").is_none(), "the new secret is shown once too");
    assert_eq!(app.check(&old, ALLOWED).await.0, 200, "the old secret works during the grace period");
    assert_eq!(app.check(&new, ALLOWED).await.0, 200);
    // Delete: a confirmation page first, with a way back.
    let confirm = s.get(&app, &format!("/ui/keys/{id}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.html.contains(">Delete</button>") && confirm.html.contains("href=\"/ui/keys\">Cancel</a>"));
    assert_eq!(app.check(&new, ALLOWED).await.0, 200, "asking to confirm deletes nothing");
    let deleted = s.post(&app, &format!("/ui/keys/{id}/delete"), &[]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/ui/keys"));
    assert_eq!(app.check(&new, ALLOWED).await.0, 401);
    assert_eq!(app.check(&old, ALLOWED).await.0, 401);
    assert_eq!(s.get(&app, &format!("/ui/keys/{id}/delete")).await.status, 404);
});

each_backend!(rotating_or_deleting_a_key_ends_its_sessions, |backend| {
    let app = TestApp::new(backend).await;
    let admin = sign_in(&app, &app.admin_key).await;
    let (other_key, other_id, _) = create_key(&app.store, "ops@example.com", Role::Admin).await;
    let other = sign_in(&app, &other_key).await;
    let rotated = admin.post(&app, &format!("/ui/keys/{other_id}/rotate"), &[("grace_seconds", "600")]).await;
    assert_eq!(rotated.status, 303);
    assert_eq!(other.get(&app, "/ui/keys").await.status, 303, "the rotated key's session ended");
    let (viewer_key, viewer_id, _) = create_key(&app.store, "ops@example.com", Role::Viewer).await;
    let viewer = sign_in(&app, &viewer_key).await;
    assert_eq!(admin.post(&app, &format!("/ui/keys/{viewer_id}/delete"), &[]).await.status, 303);
    assert_eq!(viewer.get(&app, "/ui/keys").await.status, 303, "the deleted key's session ended");
    assert_eq!(admin.get(&app, "/ui/keys").await.status, 200, "the acting session goes on");
});

each_backend!(rotating_ones_own_key_shows_the_secret_and_signs_out, |backend| {
    let app = TestApp::new(backend).await;
    let (key, id, _) = create_key(&app.store, "me@example.com", Role::Admin).await;
    let s = sign_in(&app, &key).await;
    let form = s.get(&app, &format!("/ui/keys/{id}/rotate")).await;
    assert!(form.html.contains("you are signed in with"), "{}", form.html);
    let page = s.post(&app, &format!("/ui/keys/{id}/rotate"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.header("cache-control"), "no-store");
    let new = element(&page, "new-key").unwrap();
    assert_eq!(s.get(&app, "/ui/keys").await.status, 303, "signed out");
    sign_in(&app, &new).await;
});

each_backend!(a_viewer_sees_no_write_control_and_every_write_is_refused, |backend| {
    let app = TestApp::new(backend).await;
    let (viewer_key, _, _) = create_key(&app.store, "viewer@example.com", Role::Viewer).await;
    let v = sign_in(&app, &viewer_key).await;
    let page = v.get(&app, "/ui/keys").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&app.app_key_id.to_string()), "a viewer sees the keys");
    for control in ["method=\"post\" action=\"/ui/keys\"", ">Create</button>", "/rotate\"", "/delete\"", ">Rotate<"] {
        assert!(!page.html.contains(control), "a viewer must not see {control}");
    }
    let id = app.app_key_id;
    for path in [format!("/ui/keys/{id}/rotate"), format!("/ui/keys/{id}/delete")] {
        assert_eq!(v.get(&app, &path).await.status, 403, "GET {path}");
    }
    let customer = app.customer_id.to_string();
    let before = app.store.admin_audit(1, 1).await.unwrap().total;
    for (path, fields) in [
        ("/ui/keys".to_owned(), vec![("name", "x"), ("customer_id", customer.as_str()), ("role", "admin")]),
        (format!("/ui/keys/{id}/rotate"), vec![]),
        (format!("/ui/keys/{id}/delete"), vec![]),
    ] {
        let page = v.post(&app, &path, &fields).await;
        assert_eq!(page.status, 403, "POST {path}");
    }
    assert_eq!(app.store.admin_audit(1, 1).await.unwrap().total, before, "nothing changed");
    assert_eq!(app.check(&app.app_key, ALLOWED).await.0, 200);
});

each_backend!(a_write_without_the_csrf_token_is_refused, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let customer = app.customer_id.to_string();
    let id = app.app_key_id.to_string();
    let before = app.store.list_keys(None, 1, 100).await.unwrap().total;
    for (path, fields) in [
        ("/ui/keys".to_owned(), vec![("name", "x"), ("customer_id", customer.as_str()), ("role", "app")]),
        (format!("/ui/keys/{id}/delete"), vec![]),
        (format!("/ui/keys/{id}/rotate"), vec![]),
    ] {
        let page = post(&app, &path, Some(&s.cookie), &fields).await;
        assert_eq!(page.status, 403, "POST {path} without a token");
        let mut forged = vec![("csrf", "0000")];
        forged.extend_from_slice(&fields);
        assert_eq!(post(&app, &path, Some(&s.cookie), &forged).await.status, 403, "POST {path} with a wrong token");
    }
    assert_eq!(app.store.list_keys(None, 1, 100).await.unwrap().total, before);
    assert_eq!(app.check(&app.app_key, ALLOWED).await.0, 200, "the key was neither deleted nor rotated");
});
