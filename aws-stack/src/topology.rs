//! Every AWS resource of one deployment, named once from a prefix: what `crm aws init`
//! creates, what the tests and the local AWS mode run on, and what the infrastructure
//! code will declare.

use event_store::DynamoTables;
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

    /// One rule per aggregate type. EventBridge gives an SQS target a fixed message
    /// group id, so the group is the aggregate type: order within a type is kept, and
    /// the projector's per-stream sequence copes with everything else.
    pub fn rules(&self) -> Vec<Rule> {
        AGGREGATES
            .iter()
            .map(|aggregate| Rule {
                name: format!("{}{aggregate}-to-projector", self.prefix),
                pattern: format!(r#"{{"source": ["{}{aggregate}"]}}"#, relay::SOURCE_PREFIX),
                message_group: (*aggregate).to_string(),
                to_sftp_exports: EXPORTED.contains(aggregate),
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

/// An EventBridge rule that sends one aggregate type's events to the projector queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub pattern: String,
    pub message_group: String,
    /// Also sent to the SFTP worker's exports queue.
    pub to_sftp_exports: bool,
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
        assert_eq!(rules.len(), AGGREGATES.len());
        let pattern: serde_json::Value = serde_json::from_str(&rules[0].pattern).unwrap();
        assert_eq!(pattern["source"][0], "crm.client");
        let exported: Vec<bool> = rules.iter().map(|r| r.to_sftp_exports).collect();
        assert_eq!(exported, vec![true, true, false, false]);
    }
}
