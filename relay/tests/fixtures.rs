//! The handler's reading of a Streams batch in the JSON Lambda really sends (fixture:
//! an insert, a modification, an unreadable insert, another insert).

use aws_lambda_events::event::dynamodb::Event;

#[test]
fn reads_inserts_skips_modifications_and_stops_at_an_unreadable_record() {
    let event: Event =
        serde_json::from_str(include_str!("fixtures/dynamodb-stream-batch.json")).unwrap();
    let (records, unreadable) = relay::lambda::new_events(event);
    assert_eq!(
        records.len(),
        1,
        "the modification is not relayed, reading stops at the broken record"
    );
    let (id, event) = &records[0];
    assert_eq!(id, "111");
    assert_eq!(
        (
            event.aggregate_type.as_str(),
            event.sequence,
            event.event_type.as_str()
        ),
        ("account", 1, "AccountOpened")
    );
    assert_eq!(event.metadata["actor_id"], "agent-1");
    assert_eq!(event.payload["AccountOpened"]["currency"], "EUR");
    assert_eq!(
        unreadable.as_deref(),
        Some("113"),
        "Lambda retries from the unreadable record"
    );
    let entry = relay::entry("crm", event);
    assert_eq!(entry.source(), Some("crm.account"));
    assert_eq!(entry.detail_type(), Some("AccountOpened"));
}
