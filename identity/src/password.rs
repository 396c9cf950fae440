//! Argon2id password hashing, off the async runtime (it is deliberately slow).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use std::sync::OnceLock;

/// A hash of a random password nobody has, verified against for unknown usernames so
/// that "no such user" takes as long as "wrong password".
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let secret = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_str().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub(crate) async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Verifies `password` against `stored`, or against a decoy when there is no user.
pub(crate) async fn verify(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let matches = tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| decoy().to_string());
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && matches
}

/// The staff password rule a user pool must declare so that it accepts exactly what
/// [`check_strength`] accepts: a length, and no character-class rules (NIST SP 800-63B
/// advises against them; guessability is judged by zxcvbn instead, before the pool is
/// asked). `crm aws init` creates pools with it; infra/ reads it from
/// `crm aws topology --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordPolicy {
    pub minimum_length: u8,
    pub maximum_length: u8,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_digits: bool,
    pub require_symbols: bool,
    /// How long an administrator-set first password stays usable.
    pub temporary_password_validity_days: u8,
}

pub const PASSWORD_POLICY: PasswordPolicy = PasswordPolicy {
    minimum_length: 12,
    maximum_length: 128,
    require_lowercase: false,
    require_uppercase: false,
    require_digits: false,
    require_symbols: false,
    temporary_password_validity_days: 3,
};

/// Passwords for staff: long enough to resist guessing, not so long they DoS the hasher,
/// and not guessable: not a common password, nor built from the person's own names or
/// the bank's (`context`), per NIST SP 800-63B §5.1.1.2. zxcvbn scores how many guesses
/// a password would take; 3 ("safely unguessable") is required.
pub fn check_strength(password: &str, context: &[&str]) -> Result<(), &'static str> {
    let length = password.chars().count();
    if length < usize::from(PASSWORD_POLICY.minimum_length) {
        return Err("must be at least 12 characters");
    }
    if length > usize::from(PASSWORD_POLICY.maximum_length) {
        return Err("must be at most 128 characters");
    }
    let mut inputs: Vec<&str> = context.iter().copied().filter(|c| !c.is_empty()).collect();
    inputs.extend(["ledgerline", "bank", "password", "admin"]);
    if u8::from(zxcvbn::zxcvbn(password, &inputs).score()) < 3 {
        return Err(
            "is too easy to guess (a common password, or made from the username or the bank's name); a few unrelated words work well",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let stored = hash("correct horse battery".into()).await.unwrap();
        assert!(verify("correct horse battery".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(stored)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn strength_bounds() {
        assert!(check_strength("short", &[]).is_err());
        assert!(check_strength(&"x".repeat(129), &[]).is_err());
        // Long enough but guessable: common, repeated, or the username itself.
        assert!(check_strength("password1234", &[]).is_err());
        assert!(check_strength("rootrootroot", &["root"]).is_err());
        assert!(check_strength("alice.smith1", &["alice.smith"]).is_err());
        assert!(check_strength("Ledgerline2026!", &[]).is_err());
        assert!(check_strength("carol-password-1", &["carol"]).is_ok());
    }
}
