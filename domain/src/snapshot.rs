//! When a stored snapshot of an aggregate's state may stand in for replaying its events.
//! A snapshot is a cache the store derives and can always remake: it is usable only
//! under the schema it was written with, so a change to the state's shape or to how old
//! events are read retires every earlier snapshot instead of misreading it.

use cqrs_es::Aggregate;

/// An aggregate whose state may be snapshotted.
pub trait Snapshotted: Aggregate {
    /// Bump when the state's fields or what `apply` makes of an event change: snapshots
    /// written under another number are ignored and made again from the events.
    const STATE_VERSION: u32;
    /// Whether the store may keep snapshots of it at all.
    const SNAPSHOTS: bool = true;
}

/// The schema a snapshot of `A` is written and read under: the aggregate, its state
/// version, and the event versions readers upcast to (so a new upcaster, which reads an
/// older event differently, also retires the snapshots taken before it).
pub fn schema<A: Snapshotted>() -> String {
    format!(
        "{}/{}/{}",
        A::TYPE,
        A::STATE_VERSION,
        crate::upcast::current_versions()
    )
}

impl Snapshotted for crate::account::Account {
    const STATE_VERSION: u32 = 1;
}

impl Snapshotted for crate::client::Client {
    const STATE_VERSION: u32 = 1;
    /// Its state holds personal data, which the store keeps only encrypted under the
    /// client's key; a client's stream is short enough to replay.
    const SNAPSHOTS: bool = false;
}

impl Snapshotted for crate::staff::StaffUser {
    const STATE_VERSION: u32 = 1;
}

impl Snapshotted for crate::transfer::Transfer {
    const STATE_VERSION: u32 = 1;
}
