//! What every domain refusal has in common: a stable code (part of the public API as the
//! problem `type`) and a kind that tells the HTTP edge which status to answer with.

use serde::Serialize;

/// Why a command was refused, in the terms the edge maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The command's input is invalid on its own (422).
    Invalid,
    /// The command is valid but conflicts with the aggregate's state (409).
    Conflict,
    /// The command addresses an aggregate that does not exist (404).
    NotFound,
}

/// Implemented by each aggregate's error type.
pub trait Refusal: std::error::Error {
    /// Stable, kebab-case identifier, e.g. `insufficient-funds`.
    fn code(&self) -> &'static str;
    fn kind(&self) -> RefusalKind;
}

/// One invalid field: `field` uses the API's names (`address.postal_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

/// Every invalid field of an input, collected so a form can show them all at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the error of `result` under `field` (prefixing nested fields) and yields
    /// the value when there was none.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    /// Merges errors of a nested object, prefixing their fields with `prefix.`.
    pub fn nest(&mut self, prefix: &str, nested: ValidationErrors) {
        for error in nested.0 {
            self.add(format!("{prefix}.{}", error.field), error.message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}
