//! The SFTP worker against a real OpenSSH sshd (its own config, host key and client key;
//! `internal-sftp`) and the real app: good, bad and duplicate files, a transaction id
//! seen in two files, the server going away mid-run and the run retried, a wrong host
//! key refused.

use reqwest::StatusCode;
use sftp_worker::{FileOutcome, HostKey, Ledger, ProductApi, SftpConfig};
use std::path::Path;

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
