//! The read-model database's password for Lambdas. ECS injects it into the services as
//! `PGPASSWORD` (which sqlx reads); Lambda has no such injection, so a Lambda given
//! `CRM_READ_DATABASE_SECRET_ARN` reads the password from that Secrets Manager secret
//! (the JSON RDS writes and rotates: `{"username", "password", …}`) when it starts,
//! and puts it into `CRM_READ_DATABASE_URL`, which names no password.

/// `url` with the password of `secret` (the secret's JSON text).
pub fn with_password(url: &str, secret: &str) -> Result<String, String> {
    let secret: serde_json::Value =
        serde_json::from_str(secret).map_err(|e| format!("the database secret: {e}"))?;
    let password = secret
        .get("password")
        .and_then(serde_json::Value::as_str)
        .ok_or("the database secret has no password")?;
    let mut url = url::Url::parse(url).map_err(|e| format!("CRM_READ_DATABASE_URL: {e}"))?;
    url.set_password(Some(password))
        .map_err(|()| "CRM_READ_DATABASE_URL cannot carry a password".to_string())?;
    Ok(url.into())
}

/// The database URL to connect with: `url` as it is without a secret, else with the
/// secret's password.
pub async fn database_url(
    sdk: &aws_config::SdkConfig,
    url: &str,
    secret_arn: Option<&str>,
) -> Result<String, String> {
    let Some(arn) = secret_arn.filter(|arn| !arn.is_empty()) else {
        return Ok(url.to_string());
    };
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            format!(
                "reading {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?;
    with_password(url, secret.secret_string().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_the_secrets_password_into_the_url() {
        let url = with_password(
            "postgres://ledgerline@proxy.example:5432/ledgerline?sslmode=require",
            r#"{"username": "ledgerline", "password": "p@ss/word#1"}"#,
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://ledgerline:p%40ss%2Fword%231@proxy.example:5432/ledgerline?sslmode=require"
        );
        assert!(with_password("postgres://a@h/d", r#"{"username": "a"}"#).is_err());
        assert!(with_password("postgres://a@h/d", "not json").is_err());
    }
}
