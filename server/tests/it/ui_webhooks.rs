//! The Webhooks page: registering an endpoint shows its signing secret
//! once (no-store, never in the list or the endpoint's page), deleting asks
//! first, a disabled endpoint can be turned back on, recent deliveries are
//! listed; a viewer sees no write control and every write is refused.

use warden_server::store::Role;

use crate::support::{TestApp, create_key};
use crate::ui_keys::element;
use crate::ui_support::{Session, post, sign_in};

const URL: &str = "https://hooks.example.com/warden";

/// Registers an endpoint through the form; returns its id.
async fn register(app: &TestApp, s: &Session) -> String {
    let fields = [("url", URL), ("events", "key.created"), ("events", "policy.reloaded"), ("description", "ops")];
    let page = s.post(app, "/ui/webhooks", &fields).await;
    assert_eq!(page.status, 303, "{}", page.html);
    let to = page.location();
    assert!(to.starts_with("/ui/webhooks/") && to.ends_with("/new"), "{to}");
    to.trim_start_matches("/ui/webhooks/").trim_end_matches("/new").to_owned()
}

each_backend!(a_new_endpoint_secret_is_shown_once, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let list = s.get(&app, "/ui/webhooks").await;
    assert_eq!(list.status, 200);
    assert!(list.html.contains("No webhook endpoints yet"));
    assert!(list.html.contains("value=\"decision.blocked\"") && list.html.contains(">Create</button>"));
    assert!(s.get(&app, "/ui/keys").await.html.contains("href=\"/ui/webhooks\""), "linked from the keys page");
    let id = register(&app, &s).await;
    let page = s.get(&app, &format!("/ui/webhooks/{id}/new")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    let secret = element(&page, "new-secret").expect("the secret, once");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(page.html.contains("data-copy=\"new-secret\""));
    let again = s.get(&app, &format!("/ui/webhooks/{id}/new")).await;
    assert!(element(&again, "new-secret").is_none() && !again.html.contains(&secret));
    for path in ["/ui/webhooks".to_owned(), format!("/ui/webhooks/{id}")] {
        let page = s.get(&app, &path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.html.contains(URL), "{path} shows the endpoint");
        assert!(!page.html.contains(&secret), "{path} must never hold the secret");
    }
    let list = s.get(&app, "/ui/webhooks").await;
    assert!(list.html.contains("key.created, policy.reloaded") && list.html.contains("enabled"));
    // The same endpoint the admin API lists.
    let endpoint = app.store.webhook(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(endpoint.events, vec!["key.created".to_owned(), "policy.reloaded".to_owned()]);
    assert_eq!(endpoint.description, "ops");
});

each_backend!(an_invalid_endpoint_is_refused_with_the_form_kept, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let page = s.post(&app, "/ui/webhooks", &[("url", URL), ("description", "no events")]).await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("class=\"alert error\"") && page.html.contains("value=\"no events\""));
    let page = s.post(&app, "/ui/webhooks", &[("url", "ftp://x.example"), ("events", "*")]).await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("value=\"*\" checked"), "the ticked events are kept");
    assert_eq!(app.store.list_webhooks(1, 10).await.unwrap().total, 0);
});

each_backend!(delete_after_confirming_and_enable_a_disabled_endpoint, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let id = register(&app, &s).await;
    app.store
        .execute_raw(&format!(
            "UPDATE webhook_endpoint SET active = FALSE, failures = 50, disabled_reason = 'kept failing' WHERE url = '{URL}'"
        ))
        .await
        .unwrap();
    let page = s.get(&app, &format!("/ui/webhooks/{id}")).await;
    assert!(page.html.contains("disabled") && page.html.contains("kept failing"), "{}", page.html);
    assert!(page.html.contains(">Enable</button>"));
    let enabled = s.post(&app, &format!("/ui/webhooks/{id}/enable"), &[]).await;
    assert_eq!((enabled.status, enabled.location()), (303, format!("/ui/webhooks/{id}").as_str()));
    let endpoint = app.store.webhook(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(endpoint.active && endpoint.failures == 0);
    let confirm = s.get(&app, &format!("/ui/webhooks/{id}/delete")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.html.contains(">Delete</button>") && confirm.html.contains("href=\"/ui/webhooks\">Cancel</a>"));
    assert_eq!(app.store.list_webhooks(1, 10).await.unwrap().total, 1, "asking deletes nothing");
    let deleted = s.post(&app, &format!("/ui/webhooks/{id}/delete"), &[]).await;
    assert_eq!((deleted.status, deleted.location()), (303, "/ui/webhooks"));
    assert_eq!(app.store.list_webhooks(1, 10).await.unwrap().total, 0);
    assert_eq!(s.get(&app, &format!("/ui/webhooks/{id}")).await.status, 404);
    let actions: Vec<String> =
        app.store.admin_audit(1, 50).await.unwrap().items.into_iter().map(|e| e.action).collect();
    for action in ["webhook.create", "webhook.enable", "webhook.delete"] {
        assert!(actions.iter().any(|a| a == action), "{action} in the admin trail: {actions:?}");
    }
});

each_backend!(recent_deliveries_are_listed_and_can_be_sent_again, |backend| {
    let app = TestApp::new(backend).await;
    let s = sign_in(&app, &app.admin_key).await;
    let id = register(&app, &s).await;
    let endpoint: uuid::Uuid = id.parse().unwrap();
    let at = "2026-11-30T10:00:00Z";
    // Stored the way each backend binds a UUID and a time.
    let (eid, time) = match backend {
        crate::support::Backend::Sqlite => (format!("X'{}'", endpoint.simple()), format!("'{at}'")),
        crate::support::Backend::Postgres => (format!("'{endpoint}'"), format!("'{at}'::timestamptz")),
    };
    app.store
        .execute_raw(&format!(
            "INSERT INTO webhook_message (id, endpoint_id, body, events, status, attempts, next_attempt_at, created_at) \
             VALUES ('msg_test1', {eid}, '{{}}', 3, 'failed', 1, {time}, {time})"
        ))
        .await
        .unwrap();
    app.store
        .execute_raw(&format!(
            "INSERT INTO webhook_attempt (message_id, endpoint_id, attempted_at, result, status_code, latency_ms, error) \
             VALUES ('msg_test1', {eid}, {time}, 'failed', 500, 42, 'the receiver answered 500')"
        ))
        .await
        .unwrap();
    let page = s.get(&app, &format!("/ui/webhooks/{id}")).await;
    assert!(page.html.contains("msg_test1") && page.html.contains("the receiver answered 500"), "{}", page.html);
    let attempt = app.store.webhook_attempts(endpoint, 1, 10).await.unwrap().items[0].id;
    let again = s.post(&app, &format!("/ui/webhooks/{id}/deliveries/{attempt}/redeliver"), &[]).await;
    assert_eq!(again.status, 303, "{}", again.html);
    let after = app.store.webhook_attempts(endpoint, 1, 10).await.unwrap().items;
    assert_eq!(after[0].message_status, "pending", "queued to be sent again");
});

each_backend!(a_viewer_sees_endpoints_but_no_write_control, |backend| {
    let app = TestApp::new(backend).await;
    let admin = sign_in(&app, &app.admin_key).await;
    let id = register(&app, &admin).await;
    let (viewer_key, _, _) = create_key(&app.store, "viewer@example.com", Role::Viewer).await;
    let v = sign_in(&app, &viewer_key).await;
    for path in ["/ui/webhooks".to_owned(), format!("/ui/webhooks/{id}")] {
        let page = v.get(&app, &path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.html.contains(URL));
        for control in ["method=\"post\"", "/delete\"", ">Create</button>", ">Enable</button>", "Send again"] {
            // The sign-out form is the one POST form a viewer has.
            let count = page.html.matches(control).count();
            let allowed = usize::from(control == "method=\"post\"");
            assert_eq!(count, allowed, "{path}: a viewer must not see {control}");
        }
    }
    assert_eq!(v.get(&app, &format!("/ui/webhooks/{id}/delete")).await.status, 403);
    for (path, fields) in [
        ("/ui/webhooks".to_owned(), vec![("url", URL), ("events", "*")]),
        (format!("/ui/webhooks/{id}/delete"), vec![]),
        (format!("/ui/webhooks/{id}/enable"), vec![]),
        (format!("/ui/webhooks/{id}/deliveries/1/redeliver"), vec![]),
    ] {
        assert_eq!(v.post(&app, &path, &fields).await.status, 403, "POST {path}");
        assert_eq!(post(&app, &path, Some(&admin.cookie), &fields).await.status, 403, "POST {path} without CSRF");
    }
    assert_eq!(app.store.list_webhooks(1, 10).await.unwrap().total, 1);
});
