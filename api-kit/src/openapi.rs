//! What every operation of the API can answer besides its own outcomes, written into the
//! OpenAPI document once instead of on every handler: the problem+json answers of the
//! shared plumbing (authentication, JSON bodies, idempotency, limits, an unavailable
//! store). A client generated from the document — and Schemathesis, which checks every
//! answer against it — then knows every status the server can send.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder};

/// An RFC 9457 problem, as every error is answered.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct Problem {
    /// A stable URI reference naming the kind of problem, e.g. `/problems/insufficient-funds`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// For invalid input: each field and what is wrong with it.
    errors: Option<Vec<FieldError>>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct FieldError {
    field: String,
    message: String,
}

/// Marks every write of `document` as a command (routed through the command API's
/// idempotency): it takes an `Idempotency-Key` and may answer 400 (a malformed key),
/// 409 (the key's first request is still running) or 422 (the key was used with
/// another request).
pub fn document_commands(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        for operation in [
            item.post.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if !has_parameter(operation, "Idempotency-Key") {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(idempotency_key());
            }
            let responses = &mut operation.responses.responses;
            for (status, description) in [
                ("400", "Malformed input: a body that is not JSON, a bad header (If-Match, Idempotency-Key), query or cursor"),
                ("409", "`idempotency-key-in-progress`: the first request with this Idempotency-Key is still running (past its 10 s lease, a retry takes it over)"),
                ("422", "`idempotency-key-reused`: the Idempotency-Key was used with a different request"),
            ] {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| problem(description));
            }
        }
    }
}

/// Adds the shared answers to every operation of `document` that can give them.
pub fn document_shared_answers(document: &mut OpenApi) {
    use utoipa::PartialSchema;
    let components = document.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert("Problem".into(), <Problem as PartialSchema>::schema());
    components
        .schemas
        .insert("FieldError".into(), <FieldError as PartialSchema>::schema());
    for (path, item) in document.paths.paths.iter_mut() {
        let api = path.starts_with("/v1/");
        for operation in [
            item.get.as_mut(),
            item.post.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            shared_answers(operation, api);
        }
    }
}

fn shared_answers(operation: &mut Operation, api: bool) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    // A path id that does not parse names nothing (404); headers, queries and bodies
    // can be malformed (400).
    let has_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|parameters| {
            parameters
                .iter()
                .any(|p| !matches!(p.parameter_in, ParameterIn::Path))
        });
    let json_body = operation.request_body.as_ref().is_some_and(takes_a_body);
    let mut add = |status: &str, description: &str| {
        let responses = &mut operation.responses.responses;
        if !responses.contains_key(status) {
            responses.insert(status.to_string(), problem(description));
        }
    };
    if has_input {
        add("400", "Malformed input: a body that is not JSON, a bad header (If-Match, Idempotency-Key), query or cursor");
    }
    if secured {
        add(
            "401",
            "No bearer token, or one that is invalid, expired or of a disabled member of staff",
        );
    }
    if json_body {
        add("413", "The body is too large (64 KiB for the API)");
        add("415", "The body is not of the documented content type");
        add("422", "Invalid fields: `errors` names each");
    }
    if api {
        add("503", "The store is unavailable, or the request was not answered within the time limit (a command still completes: retry with the same Idempotency-Key)");
    }
}

/// JSON bodies go through the API's JSON extraction (413, 415, 422); other bodies
/// (the identity provider's forms) document their own answers.
fn takes_a_body(body: &RequestBody) -> bool {
    body.content.contains_key("application/json")
}

fn has_parameter(operation: &Operation, name: &str) -> bool {
    operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| parameters.iter().any(|p| p.name.eq_ignore_ascii_case(name)))
}

fn idempotency_key() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: the same key with the same request replays the first answer (1 to 255 printable characters)",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build()
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}
