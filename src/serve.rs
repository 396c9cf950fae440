//! Building the one-process app and serving it.

use anyhow::Context;
use api_kit::auth::TokenVerifier;
use api_kit::Authenticator;
use axum::Router;
use event_store::{EventStore, SqliteFeed, SqliteStore};
use identity::{
    EmbeddedDirectory, Identity, LocalKeySource, SigningKey, TokenIssuer, UI_CLIENT_ID,
};
use projections::{current_read_db, sqlite_url, Projector, ReadStore, SystemLog};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use api_kit::observe::{Observer, RequestCounters};

/// What the operational routes need.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Arc<EventStore>,
    pub(crate) directory: Arc<EmbeddedDirectory>,
    pub(crate) read: Arc<ReadStore>,
    pub(crate) projector: Arc<Projector<SqliteFeed>>,
    /// The store in commit order: its head is what the projector's lag is measured to.
    pub(crate) feed: SqliteFeed,
    pub(crate) counters: Arc<RequestCounters>,
}

/// A handle on an app's answer counts.
#[derive(Clone)]
pub struct Answers(Arc<RequestCounters>);

impl Answers {
    /// (method, route template, status, count), sorted.
    pub fn by_route(&self) -> Vec<(String, String, u16, u64)> {
        self.0.by_route()
    }
}

/// The assembled product.
pub struct App {
    pub router: Router,
    pub store: Arc<EventStore>,
    pub directory: Arc<EmbeddedDirectory>,
    pub issuer: Arc<TokenIssuer>,
    pub read: Arc<ReadStore>,
    pub log: Arc<SystemLog>,
    pub projector: Arc<Projector<SqliteFeed>>,
    /// The event store in commit order (what the projector and the SFTP worker follow).
    pub feed: SqliteFeed,
    /// The root admin's id, and its password when it was generated on this start.
    pub root_id: String,
    pub generated_root_password: Option<String>,
    /// Drives transfers to their end.
    pub transfers: Arc<command_api::TransferManager>,
    counters: Arc<RequestCounters>,
    shutdown: watch::Sender<bool>,
    /// The background tasks (projector, transfers, verification runs, the Merkle log,
    /// digests), awaited on close.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Signs and publishes digests of the ledger's Merkle log.
    pub notary: Arc<proofs::Notary>,
}

impl App {
    /// The answers this app gives, counted by method, route template and status (what
    /// `/metrics` exports as `ledgerline_http_route_responses_total`).
    pub fn answers(&self) -> Answers {
        Answers(self.counters.clone())
    }

    /// Stops the projector and closes the databases (tests reopen the same directory).
    pub async fn close(&self) {
        let _ = self.shutdown.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut tasks| std::mem::take(&mut *tasks))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        self.store.close().await;
        self.directory.close().await;
        self.read.close().await;
        self.log.close().await;
    }
}

/// How often erasures whose key outlived their event are looked for.
const SHRED_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Builds the app over the data directory; `public_url` is the token issuer.
pub async fn build(config: &Config, public_url: &str) -> anyhow::Result<App> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    // The settings as configured (CRM_GROUP_COMMIT, CRM_AGGREGATE_CACHE): the
    // benchmark's "off" rows measure what they say only if they reach the store.
    let sqlite = SqliteStore::open_with(&config.data_dir.join("ledger.db"), config.store)
        .await
        .context("opening the event store")?;
    let (store, feed) =
        crate::config::vaulted(sqlite, &config.ledger.master_key, &config.data_dir).await?;
    let directory = Arc::new(
        EmbeddedDirectory::open(&config.data_dir.join("identity.db"))
            .await
            .context("opening the staff directory")?,
    );
    let key = Arc::new(
        SigningKey::load_or_create(&config.data_dir.join("signing-key.pem"))
            .map_err(anyhow::Error::msg)
            .context("loading the signing key")?,
    );
    let mut redirect_uris = vec![format!("{public_url}/callback")];
    redirect_uris.extend(config.ui_redirect_uris.iter().cloned());
    directory
        .set_redirect_uris(UI_CLIENT_ID, &redirect_uris)
        .await?;

    let issuer = Arc::new(TokenIssuer::new(public_url, key.clone(), directory.clone()));
    let verifier = TokenVerifier::new(public_url, Arc::new(LocalKeySource(key)));
    let auth = Arc::new(Authenticator::new(verifier, directory.clone()));

    let (root, generated_root_password) = bootstrap_root(config, &store, &directory).await?;
    let transfers = command_api::TransferManager::new(
        store.clone(),
        command_api::Pace {
            request_patience: config.transfer_patience,
            ..command_api::Pace::EMBEDDED
        },
    );
    let resumed = transfers
        .settle_all()
        .await
        .context("finishing the transfers the last stop interrupted")?;
    if resumed > 0 {
        tracing::info!(resumed, "finished transfers interrupted by the last stop");
    }

    let read = Arc::new(
        ReadStore::open(&sqlite_url(&current_read_db(&config.data_dir)))
            .await
            .context("opening the read models")?,
    );
    let log = Arc::new(
        SystemLog::open(&sqlite_url(&config.data_dir.join("system-log.db")))
            .await
            .context("opening the system log")?,
    );
    // Ready means caught up: project everything committed before we serve.
    let projector = Arc::new(Projector::following(
        store.clone(),
        feed.clone(),
        read.clone(),
        log.clone(),
    ));
    let caught_up = projector
        .catch_up()
        .await
        .context("catching up the read models")?;
    tracing::info!(
        applied = caught_up.applied,
        position = caught_up.position,
        "read models caught up"
    );
    let (shutdown, stop) = watch::channel(false);
    let following = tokio::spawn(projector.clone().run(stop.clone()));
    let managing = tokio::spawn(transfers.clone().run(stop.clone()));
    let verifications = query_api::Verifications::new(&log);
    let verifying = tokio::spawn(
        query_api::Verifier {
            store: store.clone(),
            verifications: verifications.clone(),
            log: log.clone(),
            pace: config.verification_pace,
        }
        .run(stop.clone()),
    );

    let (notary, keys) = open_notary(config, &store)?;
    // The Merkle log follows the store after its commits; digests are signed over it.
    let logging = tokio::spawn(event_store::merkle::follow(
        store.clone(),
        LOG_PAUSE,
        stop.clone(),
    ));
    // Erasures whose key outlived their event (a stop, a failed destruction) are
    // finished at start (`config::vaulted`) and then every minute.
    let shredding = tokio::spawn({
        let (store, mut stop) = (store.clone(), stop.clone());
        async move {
            let Some(vault) = store.vault() else {
                return;
            };
            loop {
                tokio::select! {
                    () = tokio::time::sleep(SHRED_SWEEP) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    return;
                }
                if let Err(error) = vault.shred_erased().await {
                    tracing::error!(%error, "the data keys of erased clients could not be destroyed");
                }
            }
        }
    });
    let notarizing = tokio::spawn(query_api::notarize(
        notary.clone(),
        config.ledger.digest_interval,
        stop.clone(),
        log.clone(),
    ));

    let observer = Observer::new(Some(log.clone()));
    let counters = observer.counters();
    let identity = Identity {
        directory: directory.clone(),
        issuer: issuer.clone(),
        sign_ins: Arc::new(crate::sign_ins::SystemLogSignIns(log.clone())),
    };
    let commands = command_api::AppState {
        store: store.clone(),
        auth: auth.clone(),
        directory: directory.clone(),
        transfers: transfers.clone(),
    };
    let rebuild = Arc::new(crate::rebuild::EmbeddedRebuild {
        store: store.clone(),
        feed: feed.clone(),
        read: read.clone(),
        log: log.clone(),
        data_dir: config.data_dir.clone(),
        running: Default::default(),
    });
    let queries = query_api::QueryState {
        read: read.clone(),
        log: log.clone(),
        store: store.clone(),
        auth: auth.clone(),
        rebuild,
        payee_limit: Default::default(),
        verifications,
        proofs: Some(query_api::LedgerProofs {
            notary: notary.clone(),
            keys,
        }),
    };
    let mail = mail::MailState {
        store: store.clone(),
        auth,
        read: read.clone(),
        drafter: config.mail.openai_drafter(),
        sender: config.mail.smtp_sender().map_err(anyhow::Error::msg)?,
    };
    let shared = Shared {
        store: store.clone(),
        feed: feed.clone(),
        directory: directory.clone(),
        read: read.clone(),
        projector: projector.clone(),
        counters: counters.clone(),
    };
    let mut router = Router::new()
        .merge(identity::router(identity))
        .merge(command_api::router(commands))
        .merge(query_api::router(queries))
        .merge(mail::router(mail))
        .merge(crate::health::router(shared))
        // Unknown API paths stay API answers, never the UI's index page.
        .route(
            "/v1/{*rest}",
            axum::routing::any(|| async {
                api_kit::ApiError::NotFound("no such API endpoint".into())
            }),
        );
    if let Some(ui) = config
        .ui_dir
        .as_ref()
        .filter(|dir| dir.join("index.html").is_file())
    {
        // The single-page app: files as they are, every other path to index.html so
        // client-side routes survive a reload.
        let index = tower_http::services::ServeFile::new(ui.join("index.html"));
        router = router.fallback_service(tower_http::services::ServeDir::new(ui).fallback(index));
        tracing::info!(dir = %ui.display(), "serving the web UI");
    }
    let router = observer.layer(router);
    Ok(App {
        router,
        store,
        directory,
        issuer,
        read,
        log,
        projector,
        feed,
        root_id: root,
        generated_root_password,
        shutdown,
        tasks: std::sync::Mutex::new(vec![
            following, managing, verifying, logging, notarizing, shredding,
        ]),
        notary,
        transfers,
        counters,
    })
}

/// How long the Merkle log gathers appends before it is extended: one log write per
/// pause on a busy store, and digests (minutes apart) never wait on it.
const LOG_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// The notary of the configured key and digest file, and the public keys digests verify
/// against (its own and the retired ones).
fn open_notary(
    config: &Config,
    store: &Arc<EventStore>,
) -> anyhow::Result<(Arc<proofs::Notary>, proofs::PublicKeys)> {
    let ledger = &config.ledger;
    let key = proofs::keys::load_or_create(&ledger.digest_key, &config.data_dir)
        .context("loading the digest signing key")?;
    let signer = proofs::DigestSigner::new(key);
    let mut keys = proofs::PublicKeys::default();
    for path in &ledger.retired_keys {
        keys.add(proofs::keys::load_public(path).context("loading a retired digest key")?);
    }
    keys.add(signer.public_key());
    let file = proofs::DigestFile::new(&ledger.digest_file);
    let notary =
        proofs::Notary::new(store.clone(), Arc::new(signer), Arc::new(file)).trusting(&keys);
    Ok((Arc::new(notary), keys))
}

/// The root admin exists in the directory and as a StaffUser stream; either may be
/// missing after a first start that was cut short, so both are checked every start.
async fn bootstrap_root(
    config: &Config,
    store: &EventStore,
    directory: &EmbeddedDirectory,
) -> anyhow::Result<(String, Option<String>)> {
    let (root, generated) = directory
        .ensure_root(&config.root_username, config.root_password.clone())
        .await
        .context("creating the root admin")?;
    command_api::bootstrap::record_root(store, root.id, &root.username)
        .await
        .map_err(|e| anyhow::anyhow!("CRM_ROOT_USERNAME: {e}"))?;
    Ok((root.id.to_string(), generated))
}

/// Binds `addr`, builds the app and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config, addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let public_url = config.public_url_for(local);
    let app = build(&config, &public_url).await?;
    if let Some(password) = &app.generated_root_password {
        eprintln!(
            "Created the root admin `{}` with the generated password:\n\n    {password}\n\nIt is shown only this once.",
            config.root_username
        );
    }
    // Tells `crm replay` that a server owns this data directory, and where.
    let lock = config.data_dir.join(crate::replay::SERVER_FILE);
    std::fs::write(&lock, &public_url).with_context(|| format!("writing {}", lock.display()))?;
    tracing::info!(%local, %public_url, data_dir = %config.data_dir.display(), "serving");
    eprintln!("Ledgerline is serving on {public_url}");
    let (stop_worker, stopped) = watch::channel(false);
    let worker = config.sftp.clone().map(|settings| {
        // The worker calls this very server, through its own API.
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            ip => ip.to_string(),
        };
        let base = format!("http://{host}:{}", local.port());
        let (store, feed, log) = (app.store.clone(), app.feed.clone(), app.log.clone());
        let ledger = config.data_dir.join("sftp-worker.db");
        tokio::spawn(async move {
            if let Err(error) =
                sftp_worker::service::run(settings, base, store, feed, log, &ledger, stopped).await
            {
                tracing::error!(%error, "the SFTP worker stopped");
            }
        })
    });
    api_kit::serve::serve(
        listener,
        app.router.clone(),
        config.limits,
        api_kit::serve::stopped(),
    )
    .await?;
    let _ = stop_worker.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    app.close().await;
    let _ = std::fs::remove_file(&lock);
    tracing::info!("stopped");
    Ok(())
}
