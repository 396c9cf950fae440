//! Every AWS resource of one deployment, named once from a prefix: what `crm aws init`
//! creates, what the tests and the local AWS mode run on, and what the infrastructure
//! code will declare.

use event_store::{DynamoTables, TableSchema};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// The aggregate types whose events the relay publishes (`source` `crm.<type>`).
pub const AGGREGATES: [&str; 4] = ["client", "account", "transfer", "staff"];
/// The aggregate types whose events the SFTP worker exports.
const EXPORTED: [&str; 2] = ["client", "account"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    /// How long a received message stays hidden before SQS delivers it again (the
    /// projector Lambda's timeout must be shorter).
    pub visibility_timeout: Duration,
    /// Deliveries before SQS moves a message to the dead-letter queue.
    pub max_receive_count: u32,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology {
            prefix: prefix.into(),
            visibility_timeout: Duration::from_secs(60),
            max_receive_count: 5,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The event store's tables (the events table streams new images to the relay).
    pub fn tables(&self) -> DynamoTables {
        DynamoTables::with_prefix(&self.prefix)
    }

    pub fn bus(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The projector's FIFO queue.
    pub fn projector_queue(&self) -> String {
        format!("{}projector.fifo", self.prefix)
    }

    /// Where messages the projector could not take after `max_receive_count` tries go.
    pub fn projector_dlq(&self) -> String {
        format!("{}projector-dlq.fifo", self.prefix)
    }

    /// The SFTP worker's FIFO queue of client and account events (its exports).
    pub fn sftp_exports_queue(&self) -> String {
        format!("{}sftp-exports.fifo", self.prefix)
    }

    pub fn sftp_exports_dlq(&self) -> String {
        format!("{}sftp-exports-dlq.fifo", self.prefix)
    }

    /// One rule per exported aggregate type, to the SFTP worker's queue. EventBridge
    /// gives an SQS target a fixed message group id, so the group is the aggregate type:
    /// the exports keep their order within a type. The projector's queue is not a rule
    /// target: the relay sends to it itself, with each stream as its own message group
    /// ([`relay::Relay`]), so streams are projected in parallel and each in order.
    pub fn rules(&self) -> Vec<Rule> {
        EXPORTED
            .iter()
            .map(|aggregate| Rule {
                name: format!("{}{aggregate}-to-sftp-exports", self.prefix),
                pattern: format!(r#"{{"source": ["{}{aggregate}"]}}"#, relay::SOURCE_PREFIX),
                message_group: (*aggregate).to_string(),
            })
            .collect()
    }

    /// The staff user pool (groups named for the roles).
    pub fn user_pool(&self) -> String {
        format!("{}staff", self.prefix)
    }

    /// The app client the UI and scripts sign in through.
    pub fn app_client(&self) -> String {
        format!("{}ui", self.prefix)
    }
}

/// The whole topology as data (`crm aws topology --json`): the file infra/ declares its
/// resources from (`infra/topology.json`, checked against this by the test command).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopologyDocument {
    pub prefix: String,
    pub tables: [TableSchema; 4],
    pub bus: String,
    pub queues: Vec<QueueDocument>,
    pub rules: Vec<RuleDocument>,
    pub user_pool: UserPoolDocument,
    /// The headers every answer of the product carries (`api_kit::observe`), by name:
    /// CloudFront sends the same for the UI it serves.
    pub security_headers: std::collections::BTreeMap<&'static str, &'static str>,
    /// The load balancer's listener rules (the local front door routes by the same).
    pub routes: &'static [crate::routes::Route],
}

/// A FIFO queue and its FIFO dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDocument {
    /// `projector` or `sftpExports`: what the rules' `targets` name.
    pub role: &'static str,
    pub name: String,
    pub dead_letter_queue: String,
    pub fifo: bool,
    /// EventBridge sends no deduplication id (the relay sends one, the stream and
    /// sequence, and the body is the same for the same event anyway).
    pub content_based_deduplication: bool,
    /// High-throughput FIFO: deduplication and the throughput quota per message group,
    /// not per queue (the projector's queue, one group per stream).
    pub high_throughput: bool,
    pub visibility_timeout_seconds: u64,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDocument {
    pub name: String,
    pub pattern: Value,
    pub message_group_id: String,
    /// Queue roles this rule sends to.
    pub targets: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPoolDocument {
    pub name: String,
    pub app_client: String,
    /// One group per role (`cognito:groups` in tokens).
    pub groups: Vec<&'static str>,
    pub password_policy: identity::PasswordPolicy,
}

impl Topology {
    /// This topology as the document infra/ reads.
    pub fn document(&self) -> TopologyDocument {
        let queue = |role, name, dead_letter_queue| QueueDocument {
            role,
            name,
            dead_letter_queue,
            fifo: true,
            content_based_deduplication: true,
            high_throughput: role == "projector",
            visibility_timeout_seconds: self.visibility_timeout.as_secs(),
            max_receive_count: self.max_receive_count,
        };
        TopologyDocument {
            prefix: self.prefix.clone(),
            tables: self.tables().schemas(),
            bus: self.bus(),
            queues: vec![
                queue("projector", self.projector_queue(), self.projector_dlq()),
                queue(
                    "sftpExports",
                    self.sftp_exports_queue(),
                    self.sftp_exports_dlq(),
                ),
            ],
            rules: self
                .rules()
                .into_iter()
                .map(|rule| RuleDocument {
                    pattern: serde_json::from_str(&rule.pattern)
                        .expect("rule patterns are built as JSON"),
                    targets: vec!["sftpExports"],
                    name: rule.name,
                    message_group_id: rule.message_group,
                })
                .collect(),
            user_pool: UserPoolDocument {
                name: self.user_pool(),
                app_client: self.app_client(),
                groups: domain::policy::Role::ALL
                    .iter()
                    .map(|role| role.as_str())
                    .collect(),
                password_policy: identity::PASSWORD_POLICY,
            },
            security_headers: api_kit::observe::SECURITY_HEADERS.into_iter().collect(),
            routes: crate::routes::ROUTES,
        }
    }
}

/// An EventBridge rule that sends one aggregate type's events to the SFTP worker's
/// exports queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub pattern: String,
    pub message_group: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_prefix() {
        let topology = Topology::new("crm-");
        assert_eq!(topology.tables().events, "crm-Events");
        assert_eq!(topology.bus(), "crm-events");
        assert_eq!(topology.projector_queue(), "crm-projector.fifo");
        assert!(
            topology.projector_dlq().ends_with(".fifo"),
            "a FIFO queue's DLQ is FIFO"
        );
        let rules = topology.rules();
        let pattern: serde_json::Value = serde_json::from_str(&rules[0].pattern).unwrap();
        assert_eq!(pattern["source"][0], "crm.client");
        let groups: Vec<&str> = rules.iter().map(|r| r.message_group.as_str()).collect();
        assert_eq!(groups, ["client", "account"], "the exported types only");
    }

    /// infra/ declares its resources from this file: it must be what the code says.
    #[test]
    fn infra_declares_this_topology() {
        let committed: Value = serde_json::from_str(include_str!("../../infra/topology.json"))
            .expect("infra/topology.json is JSON");
        let current = serde_json::to_value(Topology::new("crm-").document()).unwrap();
        assert!(
            committed == current,
            "infra/topology.json is out of date; regenerate it with\n  cargo run --features aws --bin crm -- aws topology --json > infra/topology.json\nthe code says:\n{}",
            serde_json::to_string_pretty(&current).unwrap()
        );
    }

    #[test]
    fn the_document_names_what_init_creates() {
        let topology = Topology::new("bank-");
        let document = serde_json::to_value(topology.document()).unwrap();
        assert_eq!(document["tables"][0]["name"], "bank-Events");
        assert_eq!(document["tables"][0]["stream"], "NEW_IMAGE");
        assert_eq!(document["tables"][1]["sortKey"], Value::Null);
        assert_eq!(
            document["queues"][0]["deadLetterQueue"],
            "bank-projector-dlq.fifo"
        );
        assert_eq!(document["queues"][0]["visibilityTimeoutSeconds"], 60);
        assert_eq!(document["rules"][0]["pattern"]["source"][0], "crm.client");
        assert_eq!(
            document["rules"][0]["targets"],
            serde_json::json!(["sftpExports"])
        );
        assert_eq!(document["queues"][0]["highThroughput"], true);
        assert_eq!(document["queues"][1]["highThroughput"], false);
        assert_eq!(document["userPool"]["groups"][0], "root-admin");
        assert_eq!(document["userPool"]["passwordPolicy"]["minimumLength"], 12);
        assert_eq!(document["securityHeaders"]["x-frame-options"], "DENY");
        assert_eq!(document["routes"][0]["paths"][1], "/v1/mail/*");
        assert_eq!(document["routes"][5]["methods"][0], "GET");
        assert_eq!(document["routes"][1]["target"], "notFound");
    }
}
