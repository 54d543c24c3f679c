//! The OpenAPI document's fixed parts, and the error answers every
//! operation of a kind shares, added in one place rather than on each
//! handler: authentication failures and database outages on the admin API,
//! malformed or invalid bodies and query strings wherever they are read.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{PartialSchema as _, ToSchema as _};

use crate::error::ErrorBody;

/// The OpenAPI document's fixed parts.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(title = "Warden", description = "Decides whether an AI operation is allowed, with a risk score and a reason."),
    modifiers(&Security),
    tags(
        (name = "decisions", description = "Ask for a decision"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "admin", description = "Customers, keys, rule settings, logs (admin keys only)"),
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("wdn_<key id>_<secret>").build(),
            ),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
    }
}

/// Adds the answers operations share, where an operation doesn't document
/// them itself:
/// - every admin operation: the key security schemes, 401 (no usable key),
///   403 (not an admin key, or a viewer key on a change) and 503 (database unavailable);
/// - every operation with a JSON body: 400 (not JSON), 413 (too large) and
///   422 (a field is invalid; `field` names it);
/// - every operation with query parameters: 422 (a parameter is invalid).
pub(crate) fn document_common_responses(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    for (path, item) in &mut api.paths.paths {
        let admin = path.starts_with("/api/admin/");
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
        for op in operations.into_iter().flatten() {
            if admin {
                if op.security.is_none() {
                    op.security = Some(vec![
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                        SecurityRequirement::new("api_key", Vec::<String>::new()),
                    ]);
                }
                add(op, "401", "Missing, malformed, unknown or inactive key");
                add(op, "403", "Not an admin key (a viewer key may only read: GET)");
                add(op, "503", "The database is unavailable; try again");
            }
            // Every authenticated operation runs key verification, whose
            // failures are limited per key id and client address.
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(
                    op,
                    "429",
                    "Rate limited, or too many failed key verifications (`too_many_failures`); see Retry-After",
                );
            }
            // The listener's request timeout applies to every route.
            add(op, "408", "The body or the answer took longer than the request timeout");
            if let Some(body) = op.request_body.as_mut() {
                optional_body_is_omitted_not_null(body);
                add(op, "400", "The body is not valid JSON");
                add(op, "413", "The body is larger than the limit");
                add(op, "422", "A field is invalid; `field` names it");
            }
            let has_query = op
                .parameters
                .as_ref()
                .is_some_and(|ps| ps.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query)));
            if has_query {
                add(op, "422", "A query parameter is invalid; `field` names it");
            }
        }
    }
}

/// utoipa documents an optional body (`request_body = Option<T>`) as
/// "`null` or `T`". Warden reads an omitted body as `{}`, but `null` is not
/// an object: the body may be left out, not sent as `null`.
fn optional_body_is_omitted_not_null(body: &mut RequestBody) {
    if matches!(body.required, Some(Required::True)) {
        return;
    }
    for content in body.content.values_mut() {
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let not_null: Vec<_> = one_of
                .items
                .iter()
                .filter(|s| !matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)))
                .cloned()
                .collect();
            if let [only] = not_null.as_slice() {
                content.schema = Some(only.clone());
            }
        }
    }
    body.required = Some(Required::False);
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name(ErrorBody::name()))).build(),
                )
                .build(),
        )
    });
}
