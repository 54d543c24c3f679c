#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)] // tests fail loudly

use figment::Jail;

use super::*;

fn load_in(jail: &Jail, file: Option<&str>, args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let path = file.map(|text| {
        jail.create_file("warden.toml", text).unwrap();
        jail.directory().join("warden.toml")
    });
    let args = ServeArgs { config: path, ..args.clone() };
    ServeConfig::load(&args)
}

#[test]
fn the_env_list_names_every_setting_and_nothing_else() {
    let value = serde_json::to_value(ServeConfig::default()).unwrap();
    let mut fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    let mut listed = SETTINGS.to_vec();
    listed.sort_unstable();
    assert_eq!(fields, listed);
}

#[test]
fn defaults_apply_when_nothing_is_given() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, None, &ServeArgs::default()).unwrap();
        assert_eq!(c, ServeConfig::default());
        Ok(())
    });
}

#[test]
fn precedence_is_defaults_then_file_then_environment_then_flags() {
    Jail::expect_with(|jail| {
        let file = "rate_limit_requests = 200\nkey_cache_capacity = 7\nbcrypt_cost = 5\n";
        let c = load_in(jail, Some(file), &ServeArgs::default()).unwrap();
        assert_eq!((c.rate_limit_requests, c.key_cache_capacity, c.bcrypt_cost), (200, 7, 5));

        jail.set_env("WARDEN_RATE_LIMIT_REQUESTS", "300");
        jail.set_env("WARDEN_KEY_CACHE_CAPACITY", "8");
        let c = load_in(jail, Some(file), &ServeArgs::default()).unwrap();
        assert_eq!((c.rate_limit_requests, c.key_cache_capacity, c.bcrypt_cost), (300, 8, 5), "env beats file");

        let flags = ServeArgs { rate_limit_requests: Some(400), ..ServeArgs::default() };
        let c = load_in(jail, Some(file), &flags).unwrap();
        assert_eq!((c.rate_limit_requests, c.key_cache_capacity), (400, 8), "flags beat env");
        Ok(())
    });
}

#[test]
fn booleans_come_from_the_file_the_environment_or_a_flag() {
    Jail::expect_with(|jail| {
        assert!(load_in(jail, Some("no_watch = true\n"), &ServeArgs::default()).unwrap().no_watch);
        assert!(!load_in(jail, Some("no_watch = false\n"), &ServeArgs::default()).unwrap().no_watch);
        jail.set_env("WARDEN_NO_WATCH", "true");
        assert!(load_in(jail, Some("no_watch = false\n"), &ServeArgs::default()).unwrap().no_watch);
        jail.set_env("WARDEN_NO_WATCH", "false");
        let flag = ServeArgs { no_watch: true, ..ServeArgs::default() };
        assert!(load_in(jail, None, &flag).unwrap().no_watch);
        Ok(())
    });
}

#[test]
fn durations_are_humantime_strings_in_every_layer() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, Some("rate_limit_window = \"90s\"\ndrain_timeout = \"2m\"\n"), &ServeArgs::default())
            .unwrap();
        assert_eq!((c.rate_limit_window, c.drain_timeout), (Duration::from_secs(90), Duration::from_secs(120)));
        jail.set_env("WARDEN_DRAIN_TIMEOUT", "500ms");
        let c = load_in(jail, None, &ServeArgs::default()).unwrap();
        assert_eq!(c.drain_timeout, Duration::from_millis(500));
        let flags = ServeArgs { drain_timeout: Some(Duration::from_secs(3)), ..ServeArgs::default() };
        assert_eq!(load_in(jail, None, &flags).unwrap().drain_timeout, Duration::from_secs(3));
        let err = load_in(jail, Some("rate_limit_window = \"soon\"\n"), &ServeArgs::default()).unwrap_err();
        assert!(err.to_string().contains("rate_limit_window"), "{err}");
        Ok(())
    });
}

#[test]
fn redis_settings_come_from_every_layer_and_bad_ones_are_named() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, None, &ServeArgs::default()).unwrap();
        assert_eq!((c.redis_url.as_deref(), c.redis_timeout), (None, Duration::from_millis(20)));
        assert_eq!((c.rate_limit_on_redis_error, c.auth_failure_limit), (OnRedisError::Local, 10));
        let file = "redis_url = \"redis://127.0.0.1:6379\"\nrate_limit_on_redis_error = \"deny\"\n";
        let c = load_in(jail, Some(file), &ServeArgs::default()).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(c.rate_limit_on_redis_error, OnRedisError::Deny);
        jail.set_env("WARDEN_REDIS_TIMEOUT", "5ms");
        jail.set_env("WARDEN_RATE_LIMIT_ON_REDIS_ERROR", "allow");
        let c = load_in(jail, Some(file), &ServeArgs::default()).unwrap();
        assert_eq!((c.redis_timeout, c.rate_limit_on_redis_error), (Duration::from_millis(5), OnRedisError::Allow));
        let flags = ServeArgs {
            auth_failure_limit: Some(3),
            client_address_header: Some("X-Forwarded-For".to_owned()),
            ..ServeArgs::default()
        };
        let c = load_in(jail, None, &flags).unwrap();
        assert_eq!((c.auth_failure_limit, c.client_address_header.as_deref()), (3, Some("X-Forwarded-For")));
        let bad = ServeArgs { client_address_header: Some("x forwarded".to_owned()), ..ServeArgs::default() };
        assert!(load_in(jail, None, &bad).unwrap_err().to_string().contains("client_address_header"));
        let err = load_in(
            jail,
            Some("redis_url = \"http://user:hunter2@example\"\nauth_failure_limit = 0\n"),
            &ServeArgs::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("redis_url") && err.contains("auth_failure_limit"), "{err}");
        assert!(!err.contains("hunter2"), "the password is not repeated: {err}");
        jail.set_env("WARDEN_RATE_LIMIT_ON_REDIS_ERROR", "maybe");
        let err = load_in(jail, None, &ServeArgs::default()).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("rate_limit_on_redis_error"), "{err}");
        Ok(())
    });
}

#[test]
fn webhook_settings_come_from_every_layer() {
    Jail::expect_with(|jail| {
        let c = load_in(jail, None, &ServeArgs::default()).unwrap();
        assert_eq!(
            (c.webhook_allow_private, c.webhook_timeout, c.webhook_disable_after),
            (false, Duration::from_secs(5), 50)
        );
        let c = load_in(jail, Some("webhook_allow_private = true\nwebhook_timeout = \"2s\"\n"), &ServeArgs::default())
            .unwrap();
        assert_eq!((c.webhook_allow_private, c.webhook_timeout), (true, Duration::from_secs(2)));
        jail.set_env("WARDEN_WEBHOOK_ALLOW_PRIVATE", "true");
        jail.set_env("WARDEN_WEBHOOK_DISABLE_AFTER", "7");
        let c = load_in(jail, None, &ServeArgs::default()).unwrap();
        assert_eq!((c.webhook_allow_private, c.webhook_disable_after), (true, 7));
        let flags = ServeArgs { webhook_timeout: Some(Duration::from_secs(3)), ..ServeArgs::default() };
        assert_eq!(load_in(jail, None, &flags).unwrap().webhook_timeout, Duration::from_secs(3));
        jail.clear_env();
        let err = load_in(jail, Some("webhook_disable_after = 0\nwebhook_timeout = \"5m\"\n"), &ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("webhook_disable_after") && err.contains("webhook_timeout"), "{err}");
        Ok(())
    });
}

#[test]
fn bad_files_and_values_are_refused_naming_the_setting() {
    Jail::expect_with(|jail| {
        let err = load_in(jail, Some("rate_limt_requests = 5\n"), &ServeArgs::default()).unwrap_err();
        assert!(err.to_string().contains("rate_limt_requests"), "unknown settings are named: {err}");
        let err = load_in(jail, Some("listen = [1]\n"), &ServeArgs::default()).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = load_in(jail, Some("rate_limit_requests = 0\nbcrypt_cost = 40\n"), &ServeArgs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_limit_requests") && err.contains("bcrypt_cost"), "every problem: {err}");
        jail.set_env("WARDEN_MAX_BODY_BYTES", "lots");
        let err = load_in(jail, None, &ServeArgs::default()).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("max_body_bytes") && err.contains("WARDEN_"), "names the source: {err}");
        let missing = ServeArgs { config: Some(PathBuf::from("/nonexistent/warden.toml")), ..ServeArgs::default() };
        assert!(matches!(ServeConfig::load(&missing), Err(ConfigError::MissingFile(_))));
        Ok(())
    });
}
