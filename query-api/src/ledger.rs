//! The verifiable ledger for auditors: signed digests of the global Merkle log, the keys
//! they verify with, inclusion and consistency proofs against any digest, and a check
//! of the whole store against every digest (docs/audit.md).

use std::sync::Arc;

use api_kit::{ApiError, AppQuery, Caller};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::merkle;
use domain::policy::Action;
use event_store::MerkleStorage;
use projections::page::{paginate, Page};
use projections::LogEntry;
use proofs::{Digest, Notary, NotaryError, PublicKeys, Report};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::aggregate_type;
use crate::params::{number, number_cursor, PageParams};
use crate::QueryState;

/// The digest side of a deployment: who signs, and the public keys digests verify
/// against (the signer's and those rotated out).
#[derive(Clone)]
pub struct LedgerProofs {
    pub notary: Arc<Notary>,
    pub keys: PublicKeys,
}

/// No digests here is not a passing outage: the resource does not exist on this
/// deployment (its store keeps no Merkle log yet).
fn proofs(state: &QueryState) -> Result<&LedgerProofs, ApiError> {
    state
        .proofs
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this deployment keeps no signed Merkle log".into()))
}

fn log(state: &QueryState) -> Result<&dyn MerkleStorage, ApiError> {
    state
        .store
        .backend()
        .merkle()
        .ok_or_else(|| ApiError::NotFound("this deployment keeps no signed Merkle log".into()))
}

fn notary_error(error: NotaryError) -> ApiError {
    match error {
        NotaryError::Store(error) => error.into(),
        NotaryError::Empty => ApiError::Conflict {
            code: "nothing-to-sign",
            detail: error.to_string(),
        },
        NotaryError::Truncated { .. }
        | NotaryError::Rewritten { .. }
        | NotaryError::Untrusted { .. } => ApiError::Conflict {
            code: "history-altered",
            detail: error.to_string(),
        },
        NotaryError::NoLog => ApiError::NotFound(error.to_string()),
        NotaryError::Published(error) => ApiError::Unavailable(error.to_string()),
        NotaryError::Sign(error) => ApiError::Unavailable(error.to_string()),
    }
}

/// The latest signed digest (auditors).
#[utoipa::path(get, path = "/v1/audit/digests/latest", tag = "audit",
    responses((status = 200, body = Digest), (status = 403), (status = 404, description = "no digest issued yet")),
    security(("bearer" = [])))]
pub(crate) async fn latest(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<Json<Digest>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    proofs(&state)?
        .notary
        .latest()
        .await
        .map_err(notary_error)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no digest has been issued yet".into()))
}

/// Every signed digest, oldest first (auditors): what they keep to verify against.
#[utoipa::path(get, path = "/v1/audit/digests", tag = "audit",
    params(("limit" = Option<i64>, Query, description = "1 to 200, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<Digest>), (status = 400, description = "a cursor this API did not give out"), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<Digest>>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let after = number_cursor(params.cursor.as_deref())?;
    let digests = digest_file(proofs(&state)?).await?;
    let page: Vec<Digest> = digests
        .into_iter()
        .filter(|d| after.is_none_or(|after| d.sequence > after))
        .take(params.limit() as usize + 1)
        .collect();
    Ok(Json(paginate(page, params.limit(), |d: &Digest| {
        vec![d.sequence.to_string()]
    })))
}

/// Signs a digest of the whole log now (auditors and admins), and records it in the
/// system log.
#[utoipa::path(post, path = "/v1/audit/digests", tag = "audit",
    responses((status = 201, body = Digest), (status = 403), (status = 409, description = "no events yet, or history no longer extends the last digest")),
    security(("bearer" = [])))]
pub(crate) async fn issue(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<(StatusCode, Json<Digest>), ApiError> {
    caller.authorize(Action::IssueDigest)?;
    let outcome = proofs(&state)?.notary.issue(false).await;
    let entry = match &outcome {
        Ok(Some(digest)) => digest_entry(digest),
        Ok(None) => return Err(ApiError::Internal("no digest was issued".into())),
        Err(error) => refusal_entry(error),
    };
    state
        .log
        .record_or_warn(entry.actor(caller.id.clone(), Some(caller.role.as_str())))
        .await;
    let digest = outcome.map_err(notary_error)?.expect("checked above");
    Ok((StatusCode::CREATED, Json(digest)))
}

/// Issues a digest every `every` while the ledger grows, until `stop`, recording each
/// one in the system log, and each refusal (an alarm when history was altered).
pub async fn notarize(
    notary: Arc<Notary>,
    every: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
    log: Arc<projections::SystemLog>,
) {
    notary
        .run(every, stop, move |outcome| {
            let log = log.clone();
            async move {
                let entry = match &outcome {
                    Ok(digest) => digest_entry(digest),
                    Err(error) => {
                        tracing::error!(%error, "no digest signed");
                        refusal_entry(error)
                    }
                };
                log.record_or_warn(entry).await;
            }
        })
        .await
}

/// The system log's entry for an issued digest.
pub fn digest_entry(digest: &Digest) -> LogEntry {
    LogEntry::new("info", "ledger", "ledger digest signed").details(json!(digest))
}

/// The system log's entry for a digest refused: an alarm when history was altered.
pub fn refusal_entry(error: &NotaryError) -> LogEntry {
    let level = match error {
        // History altered, or the log cannot be read or extended (a gap, a node
        // missing): either way digests have stopped, which someone must look at.
        NotaryError::Truncated { .. }
        | NotaryError::Rewritten { .. }
        | NotaryError::Untrusted { .. }
        | NotaryError::Store(event_store::StoreError::Corrupt(_)) => "error",
        _ => "warn",
    };
    LogEntry::new(level, "ledger", "ledger digest not signed")
        .details(json!({"reason": error.to_string()}))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DigestKey {
    key_id: String,
    /// SubjectPublicKeyInfo, PEM.
    public_key_pem: String,
    /// `ed25519` (a key file), or `ecdsa-p256-sha256` (a KMS key in AWS; signatures are
    /// r ‖ s).
    algorithm: &'static str,
    /// Whether new digests are signed with it.
    current: bool,
    /// The first and last digests in the digest file it signed (none: none yet).
    first_digest: Option<u64>,
    last_digest: Option<u64>,
}

/// The public keys digests verify against (auditors): the current one and those rotated
/// out. An auditor should take them from the bank through another channel too.
#[utoipa::path(get, path = "/v1/audit/digest-keys", tag = "audit",
    responses((status = 200, body = [DigestKey]), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn keys(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<Json<Vec<DigestKey>>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let proofs = proofs(&state)?;
    let digests = digest_file(proofs).await?;
    let current = proofs.notary.signer().key_id();
    let signed_by = |id: &str| {
        let mut by = digests
            .iter()
            .filter(|d| d.key_id == id)
            .map(|d| d.sequence);
        let first = by.next();
        (first, by.next_back().or(first))
    };
    let mut keys: Vec<DigestKey> = proofs
        .keys
        .iter()
        .map(|(id, key)| {
            let (first_digest, last_digest) = signed_by(id);
            DigestKey {
                key_id: id.to_string(),
                public_key_pem: key.to_pem(),
                algorithm: key.algorithm(),
                current: id == current,
                first_digest,
                last_digest,
            }
        })
        .collect();
    keys.sort_by(|a, b| b.current.cmp(&a.current).then(a.key_id.cmp(&b.key_id)));
    Ok(Json(keys))
}

#[derive(Debug, Deserialize)]
pub(crate) struct InclusionParams {
    aggregate_type: String,
    id: String,
    #[serde(default, deserialize_with = "number")]
    sequence: Option<i64>,
    #[serde(default, deserialize_with = "number")]
    tree_size: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InclusionProof {
    aggregate_type: String,
    id: String,
    sequence: u64,
    /// The event's place in commit order, from 0.
    leaf_index: u64,
    tree_size: u64,
    /// What the leaf commits to, hex: the hash computed over the event as stored, then
    /// the hash stored with it (equal for an unaltered event).
    leaf_value: String,
    /// SHA-256(0x00 ‖ leaf_value), hex.
    leaf_hash: String,
    /// The sibling hashes from the leaf up, hex (RFC 9162 §2.1.3).
    proof: Vec<String>,
    /// The root they lead to, as this server computes it: hold it against a digest.
    root_hash: String,
}

/// Proves an event is in the tree of a digest (auditors): by default the latest
/// digest's tree size.
#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit",
    params(("aggregate_type" = String, Query), ("id" = String, Query), ("sequence" = i64, Query), ("tree_size" = Option<i64>, Query, description = "default: the latest digest's")),
    responses((status = 200, body = InclusionProof), (status = 400, description = "a missing or bad number"), (status = 403), (status = 404), (status = 409, description = "the event is not in a tree of that size")),
    security(("bearer" = [])))]
pub(crate) async fn inclusion(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let kind = aggregate_type(&params.aggregate_type)?;
    let sequence = positive(params.sequence, "sequence")?;
    let log = log(&state)?;
    let tree_size = tree_size(&state, params.tree_size).await?;
    let leaf = log
        .leaf_of(kind, &params.id, sequence)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no event {sequence} in {kind} stream {}",
                params.id
            ))
        })?;
    if leaf >= tree_size {
        return Err(ApiError::Conflict {
            code: "not-in-tree",
            detail: format!(
                "the event is at place {leaf} in commit order, after the {tree_size} events of that tree; ask against a later digest"
            ),
        });
    }
    let event = log
        .leaf_events(leaf, 1)
        .await?
        .into_iter()
        .next()
        .filter(|(at, _)| *at == leaf)
        .ok_or_else(|| ApiError::NotFound("the event is gone from the store".into()))?
        .1;
    let value = merkle::event_leaf(&event);
    let proof = event_store::merkle::inclusion(log, tree_size, leaf).await?;
    let root = event_store::merkle::root(log, tree_size).await?;
    Ok(Json(InclusionProof {
        aggregate_type: kind.to_string(),
        id: params.id,
        sequence,
        leaf_index: leaf,
        tree_size,
        leaf_value: hex::encode(value),
        leaf_hash: hex::encode(merkle::leaf_hash(&value)),
        proof: proof.iter().map(hex::encode).collect(),
        root_hash: hex::encode(root),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConsistencyParams {
    #[serde(default, deserialize_with = "number")]
    from: Option<i64>,
    #[serde(default, deserialize_with = "number")]
    to: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsistencyProof {
    from: u64,
    to: u64,
    /// RFC 9162 §2.1.4, hex.
    proof: Vec<String>,
    /// The two roots as this server computes them.
    from_root: String,
    to_root: String,
}

/// Proves the tree of `to` events extends the tree of `from` (auditors): that history
/// between two digests was only appended to.
#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit",
    params(("from" = i64, Query, description = "the earlier digest's tree size"), ("to" = Option<i64>, Query, description = "the later digest's tree size; default: the latest digest's")),
    responses((status = 200, body = ConsistencyProof), (status = 400), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn consistency(
    State(state): State<QueryState>,
    caller: Caller,
    AppQuery(params): AppQuery<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let from = positive(params.from, "from")?;
    let log = log(&state)?;
    let to = tree_size(&state, params.to).await?;
    if from > to {
        return Err(ApiError::BadRequest {
            code: "invalid-query",
            detail: format!("from ({from}) is after to ({to})"),
        });
    }
    let proof = event_store::merkle::consistency(log, from, to).await?;
    Ok(Json(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(hex::encode).collect(),
        from_root: hex::encode(event_store::merkle::root(log, from).await?),
        to_root: hex::encode(event_store::merkle::root(log, to).await?),
    }))
}

/// Checks every logged event, every chain and every digest (auditors): names each
/// event changed or gone and each digest forged, missing or no longer matched.
#[utoipa::path(get, path = "/v1/audit/ledger/verify", tag = "audit",
    responses((status = 200, body = Report), (status = 403)), security(("bearer" = [])))]
pub(crate) async fn verify(
    State(state): State<QueryState>,
    caller: Caller,
) -> Result<Json<Report>, ApiError> {
    caller.authorize(Action::ReadAudit)?;
    let proofs = proofs(&state)?;
    let digests = digest_file(proofs).await?;
    let report = proofs::ledger_check::check_store(log(&state)?, &digests, &proofs.keys).await?;
    if !report.ok {
        tracing::warn!(
            problems = report.problems.len(),
            "the ledger check found tampering"
        );
    }
    Ok(Json(report))
}

/// Every digest published; digests that cannot be read are the server's trouble (503),
/// and are said so.
async fn digest_file(proofs: &LedgerProofs) -> Result<Vec<Digest>, ApiError> {
    proofs
        .notary
        .published()
        .read()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// A whole number ≥ 1 that the query must give.
fn positive(value: Option<i64>, name: &str) -> Result<u64, ApiError> {
    match value {
        Some(value) if value >= 1 => Ok(value as u64),
        Some(_) => Err(ApiError::BadRequest {
            code: "invalid-query",
            detail: format!("{name} must be 1 or more"),
        }),
        None => Err(ApiError::BadRequest {
            code: "invalid-query",
            detail: format!("{name} is required"),
        }),
    }
}

/// The tree size asked for, or the latest digest's; refused beyond the log.
async fn tree_size(state: &QueryState, asked: Option<i64>) -> Result<u64, ApiError> {
    let size = match asked {
        Some(_) => positive(asked, "tree_size")?,
        None => {
            proofs(state)?
                .notary
                .latest()
                .await
                .map_err(notary_error)?
                .ok_or_else(|| ApiError::NotFound("no digest has been issued yet".into()))?
                .tree_size
        }
    };
    let logged = log(state)?.log_size().await?;
    if size > logged {
        return Err(ApiError::NotFound(format!(
            "the log holds {logged} events, fewer than {size}"
        )));
    }
    Ok(size)
}
