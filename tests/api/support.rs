//! Spawning the app and speaking to it.

use event_store::CommitFeed;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) const ROOT_PASSWORD: &str = "root-password-for-tests";
pub(crate) const PASSWORD: &str = "a-long-enough-password";

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) app: crm::App,
    pub(crate) dir: tempfile::TempDir,
    /// Where the digest signing key and the digest file are kept: outside the data
    /// directory, kept across a restart.
    pub(crate) keys: tempfile::TempDir,
    pub(crate) root: String,
    counter: AtomicU32,
    _answers: AnswerRecorder,
}

/// Every test app leaves the answers it gave (method, route, status) in
/// `target/tmp/api-statuses/` when it goes, where `scripts/status-coverage.py` checks
/// that every status the OpenAPI document promises was given by some test.
pub(crate) struct AnswerRecorder(crm::serve::Answers);

impl Drop for AnswerRecorder {
    fn drop(&mut self) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-statuses");
        let lines: String = self
            .0
            .by_route()
            .into_iter()
            .map(|(method, route, status, count)| format!("{method} {route} {status} {count}\n"))
            .collect();
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(dir.join(format!("{}.log", uuid::Uuid::now_v7())), lines)
        });
        if let Err(error) = written {
            eprintln!("could not record the answers given: {error}");
        }
    }
}

/// A member of staff signed in.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) token: String,
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    pub(crate) fn is_problem(&self) -> bool {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("application/problem+json")
    }

    pub(crate) fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .expect("an id in the body")
            .to_string()
    }

    pub(crate) fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Why the app refused to start, and its data and key directories, to start it again.
pub(crate) type StartError = (anyhow::Error, tempfile::TempDir, tempfile::TempDir);

impl TestApp {
    pub(crate) async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir).await
    }

    pub(crate) async fn spawn_in(dir: tempfile::TempDir) -> TestApp {
        Self::spawn_with(dir, mail::MailSettings::default()).await
    }

    /// The app stopped and started again on its data directory.
    pub(crate) async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// The app stopped and started again on its data directory, its configuration
    /// changed by `configure`.
    pub(crate) async fn restart_with(self, configure: impl FnOnce(&mut crm::Config)) -> TestApp {
        let TestApp { app, dir, keys, .. } = self;
        app.close().await;
        Self::spawn_keyed(dir, keys, configure).await
    }

    /// The app with the mail service's model and transport configured.
    pub(crate) async fn spawn_with_mail(mail: mail::MailSettings) -> TestApp {
        Self::spawn_with(tempfile::tempdir().unwrap(), mail).await
    }

    async fn spawn_with(dir: tempfile::TempDir, mail: mail::MailSettings) -> TestApp {
        Self::spawn_configured(dir, |config| config.mail = mail).await
    }

    /// The app with its configuration changed by `configure`.
    pub(crate) async fn spawn_configured(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut crm::Config),
    ) -> TestApp {
        Self::spawn_keyed(dir, tempfile::tempdir().unwrap(), configure).await
    }

    async fn spawn_keyed(
        dir: tempfile::TempDir,
        keys: tempfile::TempDir,
        configure: impl FnOnce(&mut crm::Config),
    ) -> TestApp {
        match Self::try_spawn_keyed(dir, keys, configure).await {
            Ok(app) => app,
            Err((error, ..)) => panic!("the app did not start: {error:#}"),
        }
    }

    /// The app on `dir` and `keys` (a refused start's), or why it refuses.
    pub(crate) async fn try_spawn_in(
        dir: tempfile::TempDir,
        keys: tempfile::TempDir,
    ) -> Result<TestApp, StartError> {
        Self::try_spawn_keyed(dir, keys, |_| {}).await
    }

    /// The app stopped, then started again on its data directory with its configuration
    /// changed by `configure`: the error (with the directories back) if it refuses.
    pub(crate) async fn try_restart_with(
        self,
        configure: impl FnOnce(&mut crm::Config),
    ) -> Result<TestApp, StartError> {
        let TestApp { app, dir, keys, .. } = self;
        app.close().await;
        Self::try_spawn_keyed(dir, keys, configure).await
    }

    async fn try_spawn_keyed(
        dir: tempfile::TempDir,
        keys: tempfile::TempDir,
        configure: impl FnOnce(&mut crm::Config),
    ) -> Result<TestApp, StartError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = crm::Config {
            data_dir: dir.path().to_path_buf(),
            public_url: None,
            root_username: "root".into(),
            root_password: Some(ROOT_PASSWORD.into()),
            ui_redirect_uris: vec!["http://127.0.0.1:5173/callback".into()],
            store: event_store::SqliteOptions::default(),
            ui_dir: Some(dir.path().join("ui")),
            mail: mail::MailSettings::default(),
            sftp: None,
            limits: api_kit::serve::Limits::default(),
            transfer_patience: std::time::Duration::from_secs(10),
            // Steps of a few events, so a run over a test's small store takes several.
            verification_pace: query_api::verifier::Pace {
                step_events: 5,
                idle: std::time::Duration::from_millis(100),
                ..query_api::verifier::Pace::DEFAULT
            },
            ledger: crm::config::LedgerSettings {
                digest_key: keys.path().join("digest-signing-key.pem"),
                digest_file: keys.path().join("digests.jsonl"),
                master_key: keys.path().join("personal-data-master.key"),
                ..crm::config::LedgerSettings::beside(dir.path())
            },
        };
        configure(&mut config);
        let base = config.public_url_for(addr);
        let app = match crm::build(&config, &base).await {
            Ok(app) => app,
            Err(error) => return Err((error, dir, keys)),
        };
        let router = app.router.clone();
        tokio::spawn(async move {
            api_kit::serve::serve(listener, router, Default::default(), std::future::pending())
                .await
                .unwrap()
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The server closes a connection idle for its header timeout (10 s); a client
            // that kept it longer could send on it as it closes (IncompleteMessage).
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        let mut test = TestApp {
            base,
            http,
            _answers: AnswerRecorder(app.answers()),
            app,
            dir,
            keys,
            root: String::new(),
            counter: AtomicU32::new(0),
        };
        test.root = test.login("root", ROOT_PASSWORD).await;
        Ok(test)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
                &[],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login of {username}: {:?}",
            reply.body
        );
        reply.body["access_token"].as_str().unwrap().to_string()
    }

    /// Sends a request; `headers` are extra headers.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(request.send().await.unwrap()).await
    }

    pub(crate) async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub(crate) fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Creates a member of staff as `creator` and signs them in.
    pub(crate) async fn staff(&self, creator: &str, role: &str) -> User {
        let username = self.unique(role);
        let reply = self
            .post(
                creator,
                "/v1/staff",
                json!({"username": username, "email": format!("{username}@bank.example"), "full_name": "Test Person", "role": role, "password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let token = self.login(&username, PASSWORD).await;
        User {
            id: reply.id(),
            username,
            token,
        }
    }

    pub(crate) async fn admin(&self) -> User {
        self.staff(&self.root.clone(), "admin").await
    }

    /// An admin, then an agent created by it.
    pub(crate) async fn agent(&self) -> User {
        let admin = self.admin().await;
        self.staff(&admin.token, "agent").await
    }

    pub(crate) async fn worker(&self) -> String {
        let worker = self
            .app
            .directory
            .register_worker("test worker")
            .await
            .unwrap();
        let response = self
            .http
            .post(self.url("/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &worker.client_id),
                ("client_secret", &worker.client_secret),
            ])
            .send()
            .await
            .unwrap();
        let reply = Self::read(response).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) async fn client_of(&self, agent: &User) -> String {
        let reply = self.post(&agent.token, "/v1/clients", client_body()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.id()
    }

    /// Opens an EUR account with `balance` for a new client of `agent`.
    pub(crate) async fn account_of(&self, agent: &User, balance: i64) -> String {
        let client = self.client_of(agent).await;
        let mut body = json!({"account_type": "checking", "currency": "EUR"});
        if balance > 0 {
            body["initial_deposit"] = json!({"amount_minor": balance, "currency": "EUR"});
        }
        let reply = self
            .post(
                &agent.token,
                &format!("/v1/clients/{client}/accounts"),
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.id()
    }

    /// How many events a stream holds, read from the store.
    /// `count` accounts of `agent`'s opened with 100 EUR, each then given `deposits`
    /// deposits of 10 EUR.
    pub(crate) async fn accounts_with_deposits(
        &self,
        agent: &User,
        count: usize,
        deposits: usize,
    ) -> Vec<String> {
        let mut accounts = Vec::new();
        for _ in 0..count {
            let account = self.account_of(agent, 100).await;
            for _ in 0..deposits {
                self.post(
                    &agent.token,
                    &format!("/v1/accounts/{account}/deposits"),
                    eur(10),
                )
                .await;
            }
            accounts.push(account);
        }
        accounts
    }

    pub(crate) async fn events(&self, aggregate_type: &str, id: &str) -> usize {
        self.app
            .store
            .stream(aggregate_type, id)
            .await
            .unwrap()
            .len()
    }

    pub(crate) async fn balance(&self, account: &str) -> i64 {
        let loaded = self
            .app
            .store
            .load::<domain::account::Account>(account)
            .await
            .unwrap();
        loaded.aggregate.balance.amount_minor()
    }
}

/// Follows `next_cursor` through a list (`limit` a page), returning every item.
pub(crate) async fn walk(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(token, &url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {:?}", page.body);
        let found = page.body["items"].as_array().unwrap();
        assert!(found.len() <= limit);
        items.extend(found.iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
}

/// Polls `check` until it yields, for up to 2 s (the read side promises 1 s).
pub(crate) async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the read side did not catch up within 2 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

impl TestApp {
    pub(crate) async fn get(&self, token: &str, path: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    /// GETs `path` until it answers 200 and `ready` holds.
    pub(crate) async fn get_when(
        &self,
        token: &str,
        path: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Reply {
        eventually(|| async {
            let reply = self.get(token, path).await;
            (reply.status == StatusCode::OK && ready(&reply.body)).then_some(reply)
        })
        .await
    }

    /// Waits until the read models hold everything committed so far.
    pub(crate) async fn settled(&self) {
        eventually(|| async {
            let head = self.app.feed.head().await.unwrap();
            (self.app.projector.stats().2 >= head).then_some(())
        })
        .await
    }
}

pub(crate) fn person(first: &str, last: &str, email: &str) -> Value {
    let mut body = client_body();
    body["first_name"] = json!(first);
    body["last_name"] = json!(last);
    body["email"] = json!(email);
    body
}

pub(crate) fn client_body() -> Value {
    json!({
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1990-12-10",
        "gender": "female",
        "email": "ada@example.com",
        "phone": "+353 1 234 5678",
        "address": {"line1": "1 Main Street", "city": "Dublin", "state": "", "country": "IE", "postal_code": "D01 F5P2"}
    })
}

pub(crate) fn eur(amount: i64) -> Value {
    json!({"amount": {"amount_minor": amount, "currency": "EUR"}})
}
