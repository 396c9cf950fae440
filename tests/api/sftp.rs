//! The SFTP worker against a real OpenSSH sshd (its own config, host key and client key;
//! `internal-sftp`) and the real app: good, bad and duplicate files, a transaction id
//! seen in two files, the server gone and the run retried, a connection dropped in the
//! middle of a download and retried, a wrong host key refused, exports appearing whole.

use reqwest::StatusCode;
use sftp_worker::{FileOutcome, HostKey, Ledger, ProductApi, SftpConfig};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, User};

struct Rig {
    app: TestApp,
    sshd: test_peers::Sshd,
    config: SftpConfig,
    api: ProductApi,
    ledger: Ledger,
    agent: User,
    _state: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let app = TestApp::spawn().await;
        let agent = app.agent().await;
        let sshd = test_peers::sshd().await;
        let dir = |name: &str| sshd.root.join(name).display().to_string();
        let config = SftpConfig {
            host: "127.0.0.1".into(),
            port: sshd.port,
            username: sshd.user.clone(),
            key_file: sshd.client_key.clone(),
            host_key: HostKey::Pinned(sshd.host_key.clone()),
            inbox: dir("inbox"),
            archive: dir("archive"),
            error: dir("error"),
            outbox: dir("outbox"),
        };
        let worker = app.app.directory.register_worker("sftp").await.unwrap();
        let api = ProductApi::new(
            &app.base,
            &app.url("/oauth2/token"),
            &worker.client_id,
            &worker.client_secret,
        );
        let state = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&state.path().join("sftp.db")).await.unwrap();
        Rig {
            app,
            sshd,
            config,
            api,
            ledger,
            agent,
            _state: state,
        }
    }

    /// Uploads as the core system does: under a temporary name, then renamed in.
    fn upload(&self, name: &str, lines: &[String]) {
        let mut text = sftp_worker::format::HEADER.join(",");
        for line in lines {
            text.push('\n');
            text.push_str(line);
        }
        let inbox = self.sshd.root.join("inbox");
        std::fs::write(inbox.join(format!("{name}.part")), text).unwrap();
        std::fs::rename(inbox.join(format!("{name}.part")), inbox.join(name)).unwrap();
    }

    async fn run(&self) -> Result<sftp_worker::RunReport, sftp_worker::inbound::RunError> {
        sftp_worker::run(&self.config, &self.api, &self.ledger, &self.app.app.log).await
    }

    fn names(&self, dir: &str) -> Vec<String> {
        names(&self.sshd.root.join(dir))
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn line(id: &str, account: &str, direction: &str, amount: i64) -> String {
    format!("{id},{account},{direction},{amount},EUR,2026-11-24T09:00:00Z,core booking {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_recorded_whole_once_or_quarantined_with_a_report() {
    let rig = Rig::start().await;
    let (a, b) = (
        rig.app.account_of(&rig.agent, 1_000).await,
        rig.app.account_of(&rig.agent, 0).await,
    );

    // A good file: every line recorded, the file archived.
    rig.upload(
        "2026-11-24-a.csv",
        &[
            line("core-1", &a, "credit", 500),
            line("core-2", &a, "debit", 200),
            line("core-3", &b, "credit", 50),
        ],
    );
    let report = rig.run().await.unwrap();
    assert_eq!(
        report.files,
        vec![(
            "2026-11-24-a.csv".to_string(),
            FileOutcome::Archived {
                recorded: 3,
                already_recorded: 0
            }
        )]
    );
    assert_eq!(
        (rig.app.balance(&a).await, rig.app.balance(&b).await),
        (1_300, 50)
    );
    assert!(rig.names("inbox").is_empty());
    assert_eq!(rig.names("archive"), vec!["2026-11-24-a.csv"]);

    // A bad file: nothing of it recorded; quarantined with a report naming each line.
    rig.upload(
        "2026-11-24-b.csv",
        &[
            line("core-4", &a, "credit", 1),
            line(
                "core-5",
                "01936f5e-2c3a-7b4d-9e8f-0a1b2c3d4e5f",
                "credit",
                1,
            ),
            line("core-6", &b, "debit", 51),
            "core-7,oops".into(),
        ],
    );
    let report = rig.run().await.unwrap();
    assert!(matches!(report.files[0].1, FileOutcome::Rejected { .. }));
    assert_eq!(
        rig.names("error"),
        vec!["2026-11-24-b.csv", "2026-11-24-b.csv.report.txt"]
    );
    let report =
        std::fs::read_to_string(rig.sshd.root.join("error/2026-11-24-b.csv.report.txt")).unwrap();
    assert!(report.contains("line 5: 2 fields, not 7"), "{report}");
    // Checked against the accounts only once every line reads well; then each refusal.
    rig.upload(
        "2026-11-24-c.csv",
        &[
            line("core-4", &a, "credit", 1),
            line(
                "core-5",
                "01936f5e-2c3a-7b4d-9e8f-0a1b2c3d4e5f",
                "credit",
                1,
            ),
            line("core-6", &b, "debit", 51),
        ],
    );
    rig.run().await.unwrap();
    let report =
        std::fs::read_to_string(rig.sshd.root.join("error/2026-11-24-c.csv.report.txt")).unwrap();
    assert!(
        report.contains("line 3: account 01936f5e-2c3a-7b4d-9e8f-0a1b2c3d4e5f does not exist"),
        "{report}"
    );
    assert!(
        report.contains("line 4: the debit would take account"),
        "{report}"
    );
    assert!(!report.contains("line 2"), "{report}");
    assert_eq!(
        (rig.app.balance(&a).await, rig.app.balance(&b).await),
        (1_300, 50)
    );

    // The same file again: no second effect.
    rig.upload(
        "2026-11-24-a.csv",
        &[
            line("core-1", &a, "credit", 500),
            line("core-2", &a, "debit", 200),
            line("core-3", &b, "credit", 50),
        ],
    );
    let report = rig.run().await.unwrap();
    assert_eq!(report.files[0].1, FileOutcome::Duplicate);
    assert_eq!(
        (rig.app.balance(&a).await, rig.app.balance(&b).await),
        (1_300, 50)
    );

    // A transaction id seen in an earlier file has no second effect either.
    rig.upload(
        "2026-11-25.csv",
        &[
            line("core-3", &b, "credit", 50),
            line("core-8", &b, "credit", 25),
        ],
    );
    let report = rig.run().await.unwrap();
    assert_eq!(
        report.files[0].1,
        FileOutcome::Archived {
            recorded: 1,
            already_recorded: 1
        }
    );
    assert_eq!(rig.app.balance(&b).await, 75);

    // Each run and each rejected file is in the system log.
    let admin = rig.app.admin().await;
    let log = rig
        .app
        .get(&admin.token, "/v1/system-log?category=sftp&limit=50")
        .await;
    assert_eq!(log.status, StatusCode::OK);
    let messages: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.starts_with("SFTP inbound run"))
            .count(),
        5,
        "{messages:?}"
    );
    assert!(messages.contains(&"rejected transaction file 2026-11-24-b.csv"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_leaves_the_file_for_the_next_run_and_a_wrong_host_key_is_refused() {
    let mut rig = Rig::start().await;
    let a = rig.app.account_of(&rig.agent, 0).await;
    rig.upload("retry.csv", &[line("core-1", &a, "credit", 70)]);

    rig.sshd.stop();
    assert!(rig.run().await.is_err(), "no server, no run");
    assert_eq!(rig.names("inbox"), vec!["retry.csv"]);
    assert_eq!(rig.app.balance(&a).await, 0);
    rig.sshd.start_again().await;
    let report = rig.run().await.unwrap();
    assert_eq!(
        report.files[0].1,
        FileOutcome::Archived {
            recorded: 1,
            already_recorded: 0
        }
    );
    assert_eq!(rig.app.balance(&a).await, 70);

    // The host key from a known_hosts file does as well as a pinned one.
    let known_hosts = rig._state.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}\n", rig.sshd.port, rig.sshd.host_key),
    )
    .unwrap();
    let mut known = rig.config.clone();
    known.host_key = HostKey::KnownHosts(known_hosts);
    sftp_worker::run(&known, &rig.api, &rig.ledger, &rig.app.app.log)
        .await
        .unwrap();

    // A server that shows another key is not talked to.
    rig.upload("later.csv", &[line("core-2", &a, "credit", 1)]);
    let mut wrong = rig.config.clone();
    wrong.host_key = HostKey::Pinned(
        std::fs::read_to_string(rig.sshd.client_key.with_extension("pub")).unwrap(),
    );
    let error = sftp_worker::run(&wrong, &rig.api, &rig.ledger, &rig.app.app.log)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("connecting to"), "{error}");
    assert_eq!(rig.names("inbox"), vec!["later.csv"]);
    assert_eq!(rig.app.balance(&a).await, 70);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_follow_the_events_and_appear_whole() {
    let rig = Rig::start().await;
    let a = rig.app.account_of(&rig.agent, 1_000).await;
    let reply = rig
        .app
        .post(
            &rig.agent.token,
            &format!("/v1/accounts/{a}/deposits"),
            crate::support::eur(250),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let b = rig.app.account_of(&rig.agent, 0).await;
    let reply = rig
        .app
        .post(
            &rig.agent.token,
            &format!("/v1/accounts/{b}/close"),
            serde_json::json!({}),
        )
        .await;
    assert!(reply.status.is_success(), "{:?}", reply.body);

    let remote = sftp_worker::remote::Remote::connect(&rig.config)
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    // During the day: clients and accounts, no statement yet.
    let first = sftp_worker::outbound::run(
        &rig.app.app.store,
        &rig.app.app.feed,
        &remote,
        &rig.config.outbox,
        &rig.ledger,
        today,
    )
    .await
    .unwrap();
    assert_eq!(first.files.len(), 2, "{:?}", first.files);
    // The next day: the day's statement for the account that moved money.
    let second = sftp_worker::outbound::run(
        &rig.app.app.store,
        &rig.app.app.feed,
        &remote,
        &rig.config.outbox,
        &rig.ledger,
        tomorrow,
    )
    .await
    .unwrap();
    assert_eq!(second.files, vec![format!("statement-{a}-{today}.csv")]);
    // Nothing is written twice.
    let third = sftp_worker::outbound::run(
        &rig.app.app.store,
        &rig.app.app.feed,
        &remote,
        &rig.config.outbox,
        &rig.ledger,
        tomorrow,
    )
    .await
    .unwrap();
    assert!(third.files.is_empty());
    remote.close().await;

    // Only whole files under their final names: no temporary name is left behind.
    let outbox = rig.names("outbox");
    assert_eq!(outbox.len(), 3, "{outbox:?}");
    assert!(
        outbox
            .iter()
            .all(|n| !n.starts_with('.') && n.ends_with(".csv")),
        "{outbox:?}"
    );
    let read = |prefix: &str| {
        let name = outbox.iter().find(|n| n.starts_with(prefix)).unwrap();
        std::fs::read_to_string(rig.sshd.root.join("outbox").join(name)).unwrap()
    };
    let clients = read("clients-");
    assert_eq!(
        clients.lines().count(),
        3,
        "two clients and the header:\n{clients}"
    );
    assert!(clients.contains("Lovelace"), "{clients}");
    let accounts = read("accounts-");
    assert!(
        accounts.contains(&format!("{a},")) && accounts.contains(&format!("{b},")),
        "{accounts}"
    );
    assert!(accounts.contains(",closed,"), "{accounts}");
    let statement = read("statement-");
    let rows: Vec<&str> = statement.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        2,
        "the opening deposit and the deposit:\n{statement}"
    );
    assert!(rows[0].contains(",credit,1000,EUR,1000,"), "{statement}");
    assert!(rows[1].contains(",credit,250,EUR,1250,"), "{statement}");
}

/// A TCP relay to sshd that, while `cut_after` is set, drops a connection once the
/// server has sent that many bytes: a connection lost in the middle of a download.
async fn cutting_relay(target: u16, cut_after: Arc<AtomicUsize>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let budget = cut_after.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let upstream = tokio::io::copy(&mut client_read, &mut server_write);
                let downstream = async {
                    let mut sent = 0usize;
                    let mut buffer = vec![0u8; 8192];
                    loop {
                        let n = server_read.read(&mut buffer).await.unwrap_or(0);
                        if n == 0 || sent + n > budget {
                            return;
                        }
                        if client_write.write_all(&buffer[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                };
                tokio::select! {
                    _ = upstream => {}
                    () = downstream => {}
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_download_has_no_effect_and_the_retry_completes() {
    let mut rig = Rig::start().await;
    let a = rig.app.account_of(&rig.agent, 0).await;
    let lines: Vec<String> = (0..640)
        .map(|n| line(&format!("bulk-{n:04}"), &a, "credit", 1))
        .collect();
    rig.upload("bulk.csv", &lines);
    let size = std::fs::metadata(rig.sshd.root.join("inbox/bulk.csv"))
        .unwrap()
        .len() as usize;
    assert!(size > 60_000, "the file is larger than the cut: {size}");

    let cut_after = Arc::new(AtomicUsize::new(30_000));
    rig.config.port = cutting_relay(rig.sshd.port, cut_after.clone()).await;
    let error = rig.run().await.unwrap_err();
    assert!(!error.to_string().is_empty());
    assert_eq!(
        rig.names("inbox"),
        vec!["bulk.csv"],
        "the file stays for the next run"
    );
    assert_eq!(rig.app.balance(&a).await, 0, "nothing of it recorded");

    cut_after.store(usize::MAX, Ordering::SeqCst);
    let report = rig.run().await.unwrap();
    assert_eq!(
        report.files[0].1,
        FileOutcome::Archived {
            recorded: 640,
            already_recorded: 0
        }
    );
    assert_eq!(rig.app.balance(&a).await, 640);
}

/// The Lambda's handler, fed real EventBridge-schedule and SQS payloads: the schedule
/// reads the inbox, an SQS batch of the product's events writes their exports; the SSH
/// key and the client secret come from Secrets Manager (moto).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_reads_the_inbox_on_schedule_and_exports_queued_events() {
    use sftp_worker::lambda::{invocation, Invocation, Worker};
    let rig = Rig::start().await;
    let moto = test_peers::moto().await;
    let secrets =
        aws_sdk_secretsmanager::Client::new(&test_peers::aws::config(&moto.endpoint).await);
    let worker_client = rig
        .app
        .app
        .directory
        .register_worker("sftp-lambda")
        .await
        .unwrap();
    let secret = serde_json::json!({
        "private_key": std::fs::read_to_string(&rig.sshd.client_key).unwrap(),
        "client_secret": worker_client.client_secret,
    });
    let arn = secrets
        .create_secret()
        .name("crm/sftp")
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let state = tempfile::tempdir().unwrap();
    let key_file = state.path().join("sftp_key");
    let client_secret = sftp_worker::lambda::secret(&secrets, &arn, &key_file)
        .await
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut sftp = rig.config.clone();
    sftp.key_file = key_file;
    let worker = Worker {
        sftp,
        api: ProductApi::new(
            &rig.app.base,
            &rig.app.url("/oauth2/token"),
            &worker_client.client_id,
            &client_secret,
        ),
        ledger: Ledger::connect(&test_peers::postgres::fresh("crm_sftp_ledger").await)
            .await
            .unwrap(),
        log: rig.app.app.log.clone(),
        store: rig.app.app.store.clone(),
    };

    // The schedule: the inbox is read.
    let a = rig.app.account_of(&rig.agent, 0).await;
    rig.upload("scheduled.csv", &[line("core-1", &a, "credit", 42)]);
    let scheduled: serde_json::Value = serde_json::from_str(include_str!(
        "../../integrations/sftp/tests/fixtures/scheduled-event.json"
    ))
    .unwrap();
    assert_eq!(invocation(&scheduled).unwrap(), Invocation::Schedule);
    worker.handle(Invocation::Schedule).await.unwrap();
    assert_eq!(rig.app.balance(&a).await, 42);
    assert_eq!(rig.names("archive"), vec!["scheduled.csv"]);

    // An SQS batch of the product's events (as the bus delivers them): the exports.
    let client_id = rig.app.client_of(&rig.agent).await;
    let onboarded = rig
        .app
        .app
        .store
        .stream("client", &client_id)
        .await
        .unwrap()
        .remove(0);
    let envelope = serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": onboarded.event_type, "source": "crm.client",
        "time": "2026-11-25T06:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "aggregate_type": onboarded.aggregate_type, "aggregate_id": onboarded.aggregate_id,
            "sequence": onboarded.sequence, "event_type": onboarded.event_type,
            "event_version": onboarded.event_version, "payload": onboarded.payload,
            "metadata": onboarded.metadata,
        },
    });
    let mut batch: serde_json::Value = serde_json::from_str(include_str!(
        "../../integrations/sftp/tests/fixtures/sqs-event.json"
    ))
    .unwrap();
    batch["Records"][0]["body"] = serde_json::json!(envelope.to_string());
    let Invocation::Events(events) = invocation(&batch).unwrap() else {
        panic!("an SQS batch");
    };
    let response = worker
        .handle(Invocation::Events(events.clone()))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    let outbox = rig.names("outbox");
    assert_eq!(
        outbox,
        vec!["clients-2e1424d4-f796-459a-8184-9c92662be6da.csv"]
    );

    // With the server gone the batch is reported failed, to come back.
    let mut unreachable = worker;
    unreachable.sftp.port = 1;
    let response = unreachable
        .handle(Invocation::Events(events))
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        "2e1424d4-f796-459a-8184-9c92662be6da"
    );

    // A message that is not an event is refused, naming it.
    batch["Records"][0]["body"] = serde_json::json!("not json");
    assert!(invocation(&batch).unwrap_err().contains("2e1424d4"));
}
