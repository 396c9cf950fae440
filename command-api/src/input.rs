//! Request bodies' shared parts and their conversion into domain values.

use api_kit::ApiError;
use axum::body::Bytes;
use axum::http::HeaderMap;
use domain::contact::description;
use domain::money::MoneyError;
use domain::{Amount, Currency, ValidationErrors};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::str::FromStr;
use utoipa::ToSchema;

/// Money as the API takes it: integer minor units and an ISO 4217 code.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoneyInput {
    /// Integer count of minor units; positive.
    pub amount_minor: i64,
    #[schema(example = "EUR")]
    pub currency: String,
}

impl MoneyInput {
    /// A positive amount; errors name `field.amount_minor` or `field.currency`.
    pub(crate) fn positive(&self, field: &str, errors: &mut ValidationErrors) -> Option<Amount> {
        let currency = errors.check(
            &format!("{field}.currency"),
            Currency::parse(&self.currency),
        )?;
        match Amount::new(self.amount_minor, currency) {
            Ok(money) => Some(money),
            Err(
                error @ (MoneyError::NotPositive | MoneyError::TooLarge | MoneyError::Negative),
            ) => {
                errors.add(format!("{field}.amount_minor"), error.to_string());
                None
            }
            Err(error) => {
                errors.add(field, error.to_string());
                None
            }
        }
    }
}

/// An optional free-text description, validated.
pub(crate) fn optional_description(
    value: Option<&str>,
    field: &str,
    errors: &mut ValidationErrors,
) -> Option<String> {
    value.and_then(|text| errors.check(field, description(text)))
}

/// A path id; a malformed one names nothing that exists.
pub(crate) fn path_id<T: FromStr>(value: &str, what: &str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no {what} with id {value}")))
}

/// A body that may be empty (e.g. `POST …/freeze` with or without a reason); one that
/// is not must be JSON.
pub(crate) fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    api_kit::json::require_json(headers)?;
    serde_json::from_slice(body).map_err(|error| {
        if error.is_syntax() || error.is_eof() {
            ApiError::BadRequest {
                code: "malformed-json",
                detail: error.to_string(),
            }
        } else {
            ApiError::validation("body", error.to_string())
        }
    })
}
