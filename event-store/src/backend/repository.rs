/// The read half of cqrs-es's `PersistedEventRepository`, passed to `self.reads` (the
/// cqrs-es repository a writer wraps): our writers change only how appends are made.
macro_rules! delegate_reads {
    () => {
        async fn get_events<A: Aggregate>(
            &self,
            aggregate_id: &str,
        ) -> Result<Vec<SerializedEvent>, PersistenceError> {
            self.reads.get_events::<A>(aggregate_id).await
        }

        async fn get_last_events<A: Aggregate>(
            &self,
            aggregate_id: &str,
            last_sequence: usize,
        ) -> Result<Vec<SerializedEvent>, PersistenceError> {
            self.reads
                .get_last_events::<A>(aggregate_id, last_sequence)
                .await
        }

        async fn get_snapshot<A: Aggregate>(
            &self,
            aggregate_id: &str,
        ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
            self.reads.get_snapshot::<A>(aggregate_id).await
        }

        async fn stream_events<A: Aggregate>(
            &self,
            aggregate_id: &str,
        ) -> Result<ReplayStream, PersistenceError> {
            self.reads.stream_events::<A>(aggregate_id).await
        }

        async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
            self.reads.stream_all_events::<A>().await
        }
    };
}
pub(crate) use delegate_reads;
