//! Creating the stack (`crm aws init`): every resource of the [`Topology`], each
//! created only when it does not exist yet, so running it again is harmless.

use aws_sdk_eventbridge::types::{SqsParameters, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use domain::policy::Role;
use domain::StaffId;
use event_store::{Backend, EventStore};
use identity::{CognitoDirectory, NewDirectoryUser, StaffDirectory};
use serde::Serialize;
use serde_json::json;

use crate::clients::AwsClients;
use crate::error::StackError;
use crate::topology::Topology;

/// What was created: everything the services and Lambdas are configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    pub table_prefix: String,
    pub events_stream_arn: String,
    pub bus: String,
    pub projector_queue_url: String,
    pub projector_queue_arn: String,
    pub projector_dlq_url: String,
    pub sftp_exports_queue_url: String,
    pub sftp_exports_queue_arn: String,
    pub user_pool_id: String,
    pub app_client_id: String,
}

/// Creates what is missing of `topology` and describes the result.
pub async fn init(clients: &AwsClients, topology: &Topology) -> Result<Stack, StackError> {
    let tables = topology.tables();
    tables.create(&clients.dynamo).await?;
    let described = clients
        .dynamo
        .describe_table()
        .table_name(&tables.events)
        .send()
        .await
        .map_err(|e| StackError::aws(&tables.events, e))?;
    let events_stream_arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| StackError::Setup(format!("{} has no stream", tables.events)))?
        .to_string();

    let bus = topology.bus();
    match clients.events.create_event_bus().name(&bus).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_already_exists_exception()) => {}
        Err(e) => return Err(StackError::aws(&bus, e)),
    }

    let (dlq_url, dlq_arn) = fifo_queue(clients, &topology.projector_dlq(), &[]).await?;
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": topology.max_receive_count});
    let (queue_url, queue_arn) = fifo_queue(
        clients,
        &topology.projector_queue(),
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                topology.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            // High throughput: one message group per stream (the relay's).
            (
                QueueAttributeName::DeduplicationScope,
                "messageGroup".into(),
            ),
            (
                QueueAttributeName::FifoThroughputLimit,
                "perMessageGroupId".into(),
            ),
        ],
    )
    .await?;

    let (_, sftp_dlq_arn) = fifo_queue(clients, &topology.sftp_exports_dlq(), &[]).await?;
    let sftp_redrive =
        json!({"deadLetterTargetArn": sftp_dlq_arn, "maxReceiveCount": topology.max_receive_count});
    let (sftp_url, sftp_arn) = fifo_queue(
        clients,
        &topology.sftp_exports_queue(),
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                topology.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, sftp_redrive.to_string()),
        ],
    )
    .await?;

    let mut rule_arns = Vec::new();
    for rule in topology.rules() {
        let created = clients
            .events
            .put_rule()
            .name(&rule.name)
            .event_bus_name(&bus)
            .event_pattern(&rule.pattern)
            .send()
            .await
            .map_err(|e| StackError::aws(&rule.name, e))?;
        rule_arns.extend(created.rule_arn().map(String::from));
        let target = |id: &str, arn: &str| {
            Target::builder()
                .id(id)
                .arn(arn)
                .sqs_parameters(
                    SqsParameters::builder()
                        .message_group_id(&rule.message_group)
                        .build(),
                )
                .build()
                .map_err(|e| StackError::Setup(e.to_string()))
        };
        let targets = vec![target("sftp-exports", &sftp_arn)?];
        clients
            .events
            .put_targets()
            .rule(&rule.name)
            .event_bus_name(&bus)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| StackError::aws(&rule.name, e))?;
    }
    // Only the rules may send to the exports queue (the relay, which sends to the
    // projector's, does so by its own role's permission).
    for (url, arn, name) in [(&sftp_url, &sftp_arn, topology.sftp_exports_queue())] {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }],
        });
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| StackError::aws(name, e))?;
    }

    let (user_pool_id, app_client_id) = identity::ensure_user_pool(
        &clients.cognito,
        &topology.user_pool(),
        &topology.app_client(),
    )
    .await
    .map_err(|e| StackError::Setup(format!("user pool {}: {e}", topology.user_pool())))?;
    Ok(Stack {
        table_prefix: topology.prefix().to_string(),
        events_stream_arn,
        bus,
        projector_queue_url: queue_url,
        projector_queue_arn: queue_arn,
        projector_dlq_url: dlq_url,
        sftp_exports_queue_url: sftp_url,
        sftp_exports_queue_arn: sftp_arn,
        user_pool_id,
        app_client_id,
    })
}

/// The keys and the digest bucket of the local mode, created if missing. In AWS infra/
/// declares them (a bucket's name is global: the stack chooses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalKeys {
    /// Signs the ledger's digests: ECC_NIST_P256, alias `alias/<prefix>ledger-digests`.
    pub digest_key: String,
    /// `<prefix>ledger-digests`, with Object Lock in compliance mode (a day).
    pub digest_bucket: String,
    /// Wraps clients' data keys: symmetric, alias `alias/<prefix>personal-data`.
    pub data_key: String,
}

/// The KMS key under `alias`, made with `spec` and `usage` if there is none.
async fn kms_key(
    clients: &AwsClients,
    alias: &str,
    spec: aws_sdk_kms::types::KeySpec,
    usage: aws_sdk_kms::types::KeyUsageType,
) -> Result<String, StackError> {
    let kms = &clients.digests.kms;
    match kms.describe_key().key_id(alias).send().await {
        Ok(found) => {
            if let Some(key) = found.key_metadata().map(|m| m.key_id().to_string()) {
                return Ok(key);
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_not_found_exception()) => {}
        Err(e) => return Err(StackError::aws(alias, e)),
    }
    let made = kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description(format!("Ledgerline (local mode): {alias}"))
        .send()
        .await
        .map_err(|e| StackError::aws(alias, e))?;
    let key = made
        .key_metadata()
        .map(|m| m.key_id().to_string())
        .ok_or_else(|| StackError::Setup(format!("{alias}: no key made")))?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&key)
        .send()
        .await
        .map_err(|e| StackError::aws(alias, e))?;
    Ok(key)
}

/// Creates what [`LocalKeys`] describes where missing.
pub async fn local_keys(
    clients: &AwsClients,
    topology: &Topology,
) -> Result<LocalKeys, StackError> {
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let s3 = &clients.digests.s3;
    let name = format!("{}ledger-digests", topology.prefix()).to_lowercase();
    let digest_key = kms_key(
        clients,
        &format!("alias/{name}"),
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
    )
    .await?;
    let data_key = kms_key(
        clients,
        &format!("alias/{}personal-data", topology.prefix()).to_lowercase(),
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await?;
    match s3
        .create_bucket()
        .bucket(&name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(StackError::aws(&name, e)),
    }
    let rule = ObjectLockRule::builder()
        .default_retention(
            DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::Compliance)
                .days(1)
                .build(),
        )
        .build();
    s3.put_object_lock_configuration()
        .bucket(&name)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(rule)
                .build(),
        )
        .send()
        .await
        .map_err(|e| StackError::aws(&name, e))?;
    Ok(LocalKeys {
        digest_key,
        digest_bucket: name,
        data_key,
    })
}

/// A FIFO queue (content-based deduplication: EventBridge sends no deduplication id)
/// with `attributes`; its URL and ARN.
async fn fifo_queue(
    clients: &AwsClients,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<(String, String), StackError> {
    let mut request = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    let url = match request.send().await {
        Ok(created) => created.queue_url().unwrap_or_default().to_string(),
        // It exists with other attributes: keep it, bring the attributes up to date.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_name_exists()) =>
        {
            let url = clients
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| StackError::aws(name, e))?
                .queue_url()
                .unwrap_or_default()
                .to_string();
            for (key, value) in attributes {
                clients
                    .sqs
                    .set_queue_attributes()
                    .queue_url(&url)
                    .attributes(key.clone(), value)
                    .send()
                    .await
                    .map_err(|e| StackError::aws(name, e))?;
            }
            url
        }
        Err(e) => return Err(StackError::aws(name, e)),
    };
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| StackError::aws(name, e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| StackError::Setup(format!("{name} has no ARN")))?;
    Ok((url, arn))
}

/// The root admin: a user of the pool in the root-admin group and a StaffUser stream in
/// the event store. Returns its staff id (the user's `sub`).
pub async fn ensure_root(
    clients: &AwsClients,
    stack: &Stack,
    username: &str,
    password: &str,
) -> Result<StaffId, StackError> {
    ensure_root_in(
        clients,
        &stack.user_pool_id,
        &stack.table_prefix,
        username,
        password,
    )
    .await
}

/// The root admin of a stack deployed by infra/ (`crm aws root-admin`): the pool found by
/// the topology's name, nothing else created or changed — the tables, bus, rules, queues
/// and their policies are the infrastructure's.
pub async fn ensure_root_deployed(
    clients: &AwsClients,
    topology: &Topology,
    username: &str,
    password: &str,
) -> Result<StaffId, StackError> {
    let pool = identity::find_user_pool(&clients.cognito, &topology.user_pool())
        .await
        .map_err(|e| StackError::Setup(format!("user pool {}: {e}", topology.user_pool())))?
        .ok_or_else(|| {
            StackError::Setup(format!(
                "no user pool named {}: is the stack deployed, and CRM_STACK_PREFIX its prefix?",
                topology.user_pool()
            ))
        })?;
    ensure_root_in(clients, &pool, topology.prefix(), username, password).await
}

async fn ensure_root_in(
    clients: &AwsClients,
    user_pool_id: &str,
    table_prefix: &str,
    username: &str,
    password: &str,
) -> Result<StaffId, StackError> {
    let existing = clients
        .cognito
        .admin_get_user()
        .user_pool_id(user_pool_id)
        .username(username)
        .send()
        .await;
    let id = match existing {
        Ok(user) => user
            .user_attributes()
            .iter()
            .find(|attribute| attribute.name() == "sub")
            .and_then(|attribute| attribute.value())
            .and_then(|sub| sub.parse().ok())
            .ok_or_else(|| StackError::Setup(format!("user {username} has no usable sub")))?,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_user_not_found_exception()) =>
        {
            let directory = CognitoDirectory::new(clients.cognito.clone(), user_pool_id);
            directory
                .create_user(NewDirectoryUser {
                    id: StaffId::new(),
                    username: username.into(),
                    role: Role::RootAdmin,
                    password: password.into(),
                })
                .await
                .map_err(|e| StackError::Setup(format!("creating the root admin: {e}")))?
        }
        Err(e) => return Err(StackError::aws(format!("user {username}"), e)),
    };
    let store = EventStore::new(Backend::dynamo(
        clients.dynamo.clone(),
        event_store::DynamoTables::with_prefix(table_prefix),
    ));
    command_api::bootstrap::record_root(&store, id, username)
        .await
        .map_err(StackError::Setup)?;
    Ok(id)
}
