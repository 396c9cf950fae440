//! The AWS services on a par with `crm serve`, over HTTP in the local AWS mode: the
//! README's walkthrough passwords are accepted by the user pool (one password policy),
//! every service answers readiness and metrics, and refusals — by the command service,
//! the query service and the mail Lambda — reach the system log.

mod support;

use aws_stack::{LocalOptions, LocalStack, Topology};
use serde_json::{json, Value};
use support::{sign_in, Peers};

/// The passwords of the README's walkthrough.
const ROOT: (&str, &str) = ("root", "change-me-now-please");
const ADMIN: (&str, &str) = ("alice", "alice-password-1");
const AGENT: (&str, &str) = ("bob", "bob-password-12");
const AUDITOR: (&str, &str) = ("carol", "carol-password-1");

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_match_crm_serve() {
    let peers = Peers::start().await;
    let clients = peers.clients(None).await;
    let database = test_peers::postgres::fresh("crm_aws_parity").await;
    let any = "127.0.0.1:0".parse().unwrap();
    let stack = LocalStack::start(
        clients.clone(),
        LocalOptions {
            topology: Topology::new("par-"),
            read_database_url: database.clone(),
            command_addr: any,
            query_addr: any,
            mail_addr: any,
            front_addr: any,
            ui_dir: None,
            mail_from: "no-reply@bank.example".into(),
            root_username: ROOT.0.into(),
            root_password: ROOT.1.into(),
            region: "us-east-1".into(),
            jwks_base: Some(peers.moto.endpoint.clone()),
            projector_workers: aws_stack::local::DEFAULT_PROJECTOR_WORKERS,
        },
    )
    .await
    .unwrap();
    let app = stack.stack.app_client_id.clone();
    let http = reqwest::Client::new();
    let commands = stack.command_url.clone();

    // The walkthrough's staff, with its passwords; each signs in through the pool.
    let root = sign_in(&clients, &app, ROOT.0, ROOT.1).await;
    let person = |(username, password): (&str, &str), role: &str| {
        json!({"username": username, "email": format!("{username}@bank.example"),
               "full_name": "Walk Through", "role": role, "password": password})
    };
    let (status, body) = send(
        http.post(format!("{commands}/v1/staff"))
            .bearer_auth(&root)
            .json(&person(ADMIN, "admin")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let admin = sign_in(&clients, &app, ADMIN.0, ADMIN.1).await;
    for (who, role) in [(AGENT, "agent"), (AUDITOR, "auditor")] {
        let (status, body) = send(
            http.post(format!("{commands}/v1/staff"))
                .bearer_auth(&admin)
                .json(&person(who, role)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // A guessable password is refused by the product, before the pool is asked.
    let (status, body) = send(
        http.post(format!("{commands}/v1/staff"))
            .bearer_auth(&admin)
            .json(&person(("dave", "password1234"), "agent")),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let agent = sign_in(&clients, &app, AGENT.0, AGENT.1).await;
    // `crm aws sign-in`: anyone, by the topology's names; a wrong password is refused.
    let topology = Topology::new("par-");
    let (pool, ui) = (topology.user_pool(), topology.app_client());
    let auditor =
        identity::sign_in_with_password(&clients.cognito, &pool, &ui, AUDITOR.0, AUDITOR.1)
            .await
            .unwrap();
    // `crm aws root-admin` on a deployed stack finds what is there and changes nothing;
    // a wrong prefix is named.
    let root_again = aws_stack::ensure_root_deployed(&clients, &topology, ROOT.0, ROOT.1)
        .await
        .unwrap();
    assert_eq!(root_again, stack.root_id);
    let elsewhere =
        aws_stack::ensure_root_deployed(&clients, &Topology::new("nowhere-"), ROOT.0, ROOT.1)
            .await
            .unwrap_err();
    assert!(
        elsewhere
            .to_string()
            .contains("no user pool named nowhere-staff"),
        "{elsewhere}"
    );
    let wrong =
        identity::sign_in_with_password(&clients.cognito, &pool, &ui, AUDITOR.0, "not-the-one-1")
            .await;
    assert!(
        matches!(wrong, Err(identity::DirectoryError::InvalidCredentials)),
        "{wrong:?}"
    );

    // One refusal per service.
    let (status, _) = send(
        http.post(format!("{commands}/v1/clients"))
            .bearer_auth(&auditor)
            .json(&json!({
                "first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10",
                "gender": "female", "email": "ada@example.com", "phone": "+353 1 234 5678",
                "address": {"line1": "1 Main Street", "city": "Dublin", "state": "",
                            "country": "IE", "postal_code": "D01 F5P2"}
            })),
    )
    .await;
    assert_eq!(status, 403, "an auditor onboards no client");
    let (status, _) = send(
        http.get(format!("{}/v1/staff", stack.query_url))
            .bearer_auth(&agent),
    )
    .await;
    assert_eq!(status, 403, "an agent lists no staff");
    let (status, _) = send(
        http.post(format!("{}/v1/mail", stack.mail_url))
            .bearer_auth(&auditor)
            .json(&json!({"action": "generate", "prompt": "Thank them for their visit"})),
    )
    .await;
    assert_eq!(status, 403, "an auditor writes no mail");

    let (status, log) = send(
        http.get(format!(
            "{}/v1/system-log?category=denied&limit=50",
            stack.query_url
        ))
        .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let mut refused: Vec<String> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            format!(
                "{} by {}",
                entry["message"].as_str().unwrap(),
                entry["actor_role"].as_str().unwrap_or("?")
            )
        })
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            "GET /v1/staff refused by agent",
            "POST /v1/clients refused by auditor",
            "POST /v1/mail refused by auditor",
        ]
    );

    // Every service: ready, and metrics by route.
    for (service, url, route) in [
        ("commands", &stack.command_url, "/v1/clients"),
        ("queries", &stack.query_url, "/v1/staff"),
        ("mail", &stack.mail_url, "/v1/mail"),
    ] {
        let (status, body) = send(http.get(format!("{url}/health/ready"))).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &json!("ready")),
            "{service}"
        );
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(&format!("route=\"{route}\",status=\"403\"}} 1")),
            "{service}: {metrics}"
        );
    }

    front_door(&stack, &admin).await;
    stack.stop().await;
    test_peers::postgres::drop(&database).await;
}

/// The front door: the README's `/auth/login` and the UI's code flow sign in through the
/// pool, each sign-in and failed sign-in reaches the system log, and requests go where
/// the load balancer sends them.
async fn front_door(stack: &LocalStack, admin: &str) {
    let door = &stack.front_url;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |username: &str, password: &str| {
        http.post(format!("{door}/auth/login"))
            .json(&json!({"username": username, "password": password}))
    };
    let (status, tokens) = send(login(AGENT.0, AGENT.1)).await;
    assert_eq!(status, 200, "{tokens}");
    let agent = tokens["access_token"].as_str().unwrap().to_string();
    let (status, problem) = send(login(AGENT.0, "not-bobs-password")).await;
    assert_eq!(status, 401, "{problem}");
    let (status, _) = send(login("nobody-at-all", "not-a-password")).await;
    assert_eq!(status, 401, "an unknown user is told the same");
    let (status, problem) = send(
        http.post(format!("{door}/auth/login"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(
        (status, &problem["status"]),
        (400, &json!(400)),
        "{problem}"
    );

    // Routed as the load balancer routes: reads to the query service, commands to the
    // command service, operators' paths nowhere.
    let (status, _) = send(http.get(format!("{door}/v1/staff")).bearer_auth(&agent)).await;
    assert_eq!(status, 403, "an agent lists no staff, through the door too");
    let (status, staff) = send(http.get(format!("{door}/v1/staff")).bearer_auth(admin)).await;
    assert_eq!(status, 200, "{staff}");
    let (status, _) = send(
        http.post(format!("{door}/v1/staff"))
            .bearer_auth(&agent)
            .json(&json!({"username": "eve", "email": "eve@bank.example",
                          "full_name": "Eve", "role": "agent", "password": "eve-password-123"})),
    )
    .await;
    assert_eq!(status, 403, "an agent adds no staff");
    for path in ["/metrics", "/health/ready", "/v1/nothing-here"] {
        let (status, _) = send(http.get(format!("{door}{path}")).bearer_auth(admin)).await;
        assert_eq!(status, 404, "{path}");
    }

    // The UI's sign-in: discovery, the form, a code, the code for tokens (PKCE), refresh.
    let (status, discovery) =
        send(http.get(format!("{door}/.well-known/openid-configuration"))).await;
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], json!(stack.cognito.issuer));
    assert_eq!(
        discovery["authorization_endpoint"],
        json!(format!("{door}/oauth2/authorize"))
    );
    let verifier = "a-code-verifier-of-enough-length-for-pkce-0123456789";
    let redirect = format!("{door}/callback");
    let params = |redirect_uri: &str| {
        vec![
            ("response_type", "code".to_string()),
            ("client_id", "crm-ui".to_string()),
            ("redirect_uri", redirect_uri.to_string()),
            ("code_challenge", identity::pkce_s256(verifier)),
            ("code_challenge_method", "S256".to_string()),
            ("state", "s-1".to_string()),
        ]
    };
    let page = http
        .get(format!("{door}/oauth2/authorize"))
        .query(&params(&redirect))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    let elsewhere = http
        .get(format!("{door}/oauth2/authorize"))
        .query(&params("https://evil.example/callback"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 400, "no redirect to another origin");
    let submit = |password: &str| {
        let mut form = params(&redirect);
        form.push(("username", AUDITOR.0.to_string()));
        form.push(("password", password.to_string()));
        http.post(format!("{door}/oauth2/authorize")).form(&form)
    };
    let wrong = submit("not-carols-password").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("Invalid username or password."));
    let signed_in = submit(AUDITOR.1).send().await.unwrap();
    assert_eq!(signed_in.status(), 302);
    let location = url::Url::parse(signed_in.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/callback");
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "s-1");
    let redeem = |code: &str, verifier: &str| {
        http.post(format!("{door}/oauth2/token")).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", "crm-ui"),
            ("code_verifier", verifier),
        ])
    };
    let (status, tokens) = send(redeem(&query["code"], verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let auditor = tokens["access_token"].as_str().unwrap();
    assert!(tokens["id_token"].is_string() && tokens["refresh_token"].is_string());
    let (status, _) = send(
        http.get(format!("{door}/v1/audit/log?limit=1"))
            .bearer_auth(auditor),
    )
    .await;
    assert_eq!(status, 200, "the pool's token is good at the services");
    let (status, error) = send(redeem(&query["code"], verifier)).await;
    assert_eq!(
        (status, &error["error"]),
        (400, &json!("invalid_grant")),
        "a code is spent once"
    );
    let again = submit(AUDITOR.1).send().await.unwrap();
    let code = url::Url::parse(again.headers()["location"].to_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, _) = send(redeem(
        &code,
        "another-verifier-of-enough-length-0123456789",
    ))
    .await;
    assert_eq!(status, 400, "a code needs its own verifier");
    let (status, refreshed) = send(http.post(format!("{door}/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "crm-ui"),
    ]))
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed["access_token"].is_string());
    let (status, error) = send(
        http.post(format!("{door}/oauth2/token"))
            .form(&[("grant_type", "password"), ("username", "x")]),
    )
    .await;
    assert_eq!(
        (status, &error["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    // Bad input at the sign-in endpoints: refused in words, nothing signed in.
    let (status, error) = send(
        http.post(format!("{door}/oauth2/token"))
            .form(&[("grant_type", "authorization_code"), ("code", "x")]),
    )
    .await;
    assert_eq!(
        (status, &error["error"]),
        (400, &json!("invalid_request")),
        "fields missing"
    );
    let (status, error) = send(
        http.post(format!("{door}/oauth2/token"))
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(
        (status, &error["error"]),
        (400, &json!("invalid_request")),
        "not a form"
    );
    let (status, error) = send(http.post(format!("{door}/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "not-a-refresh-token"),
        ("client_id", "crm-ui"),
    ]))
    .await;
    assert_eq!(status / 100, 4, "a forged refresh token: {error}");
    let (status, error) = send(http.post(format!("{door}/oauth2/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "someone-elses-client"),
    ]))
    .await;
    assert_eq!((status, &error["error"]), (401, &json!("invalid_client")));
    let mut unknown = params(&redirect);
    unknown[1].1 = "someone-elses-client".into();
    let page = http
        .get(format!("{door}/oauth2/authorize"))
        .query(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400, "an unknown client");
    let mut plain = params(&redirect);
    plain.retain(|(k, _)| *k != "code_challenge");
    plain.extend([
        ("username", AUDITOR.0.to_string()),
        ("password", AUDITOR.1.to_string()),
    ]);
    let refused = http
        .post(format!("{door}/oauth2/authorize"))
        .form(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "no PKCE, no code");

    // The system log: the sign-ins with who and what role, the failures with the name
    // tried, as `crm serve` records them.
    let entries = |category: &'static str| {
        let http = http.clone();
        async move {
            let (status, log) = send(
                http.get(format!("{door}/v1/system-log?category={category}&limit=50"))
                    .bearer_auth(admin),
            )
            .await;
            assert_eq!(status, 200, "{log}");
            log["items"].as_array().unwrap().clone()
        }
    };
    let sign_ins: Vec<String> = entries("sign-in")
        .await
        .iter()
        .map(|e| {
            format!(
                "{} ({})",
                e["message"].as_str().unwrap(),
                e["actor_role"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert!(
        sign_ins.contains(&"bob signed in (agent)".to_string()),
        "{sign_ins:?}"
    );
    assert_eq!(
        sign_ins
            .iter()
            .filter(|s| *s == "carol signed in (auditor)")
            .count(),
        2,
        "{sign_ins:?}"
    );
    let mut failures: Vec<String> = entries("sign-in-failed")
        .await
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    failures.sort();
    assert_eq!(
        failures,
        [
            "failed sign-in as bob",
            "failed sign-in as carol",
            "failed sign-in as nobody-at-all"
        ]
    );
}
