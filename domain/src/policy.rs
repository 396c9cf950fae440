//! Who may do what: one pure function of the actor and the action (with the owner of the
//! target where ownership matters). Every request goes through it; the table of tests
//! below covers every role against every action, allowed and denied.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ids::StaffId;

/// The role a caller acts in. Staff roles come from the identity provider's groups;
/// `Worker` is a machine client (client credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    RootAdmin,
    Admin,
    Agent,
    Auditor,
    Worker,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::RootAdmin,
        Role::Admin,
        Role::Agent,
        Role::Auditor,
        Role::Worker,
    ];

    /// The group name used in tokens (`cognito:groups`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::RootAdmin => "root-admin",
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Auditor => "auditor",
            Role::Worker => "worker",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }

    /// Roles a person on staff can hold (workers are machine clients, not staff).
    pub fn is_staff(&self) -> bool {
        !matches!(self, Role::Worker)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The token's `sub`: a staff id, or a machine client's id.
    pub id: String,
    pub role: Role,
}

impl Actor {
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Actor {
            id: id.into(),
            role,
        }
    }

    fn is(&self, staff: StaffId) -> bool {
        self.id == staff.to_string()
    }
}

/// Everything the API lets someone do. Targets that belong to an agent name that agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateStaff {
        role: Role,
    },
    /// Disable, enable or delete a member of staff holding `role`.
    ManageStaff {
        role: Role,
    },
    ChangeStaffRole {
        from: Role,
        to: Role,
    },
    ReadStaff,
    /// Onboard a client to be assigned to `agent`.
    OnboardClient {
        agent: StaffId,
    },
    ListClients,
    ReadClient {
        agent: StaffId,
    },
    /// Update contact details or deactivate.
    UpdateClient {
        agent: StaffId,
    },
    OpenAccount {
        agent: StaffId,
    },
    ReadAccount {
        agent: StaffId,
    },
    /// Deposit, withdraw, or transfer out of an account.
    MoveMoney {
        agent: StaffId,
    },
    /// Freeze, unfreeze or close an account.
    ManageAccount {
        agent: StaffId,
    },
    ReadTransactions {
        agent: StaffId,
    },
    /// Name the holder of an account found by its number, so a payer sees whom a
    /// transfer goes to before confirming (whichever agent the payee belongs to).
    LookUpPayee,
    RecordExternalTransaction,
    ReadForExport,
    DraftMail {
        agent: StaffId,
    },
    SendMail {
        agent: StaffId,
    },
    ReadSystemLog,
    ReadAudit,
    /// Sign a digest of the ledger's Merkle log now.
    IssueDigest,
    /// Erase a (deactivated) client's personal data for good: any agent's client.
    EraseClient,
    RebuildReadModels,
}

/// A refusal, with a reason fit to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub &'static str);

/// Which staff roles `actor_role` may create and manage.
fn manages(actor_role: Role, target: Role) -> bool {
    matches!(
        (actor_role, target),
        (Role::RootAdmin, Role::Admin) | (Role::Admin, Role::Agent) | (Role::Admin, Role::Auditor)
    )
}

/// Decides whether `actor` may perform `action`.
pub fn authorize(actor: &Actor, action: Action) -> Result<(), Denied> {
    use Action::*;
    use Role::*;
    let role = actor.role;
    let allowed = match action {
        CreateStaff { role: target } | ManageStaff { role: target } => manages(role, target),
        ChangeStaffRole { from, to } => from != to && manages(role, from) && manages(role, to),
        ReadStaff | ReadSystemLog | RebuildReadModels | EraseClient => {
            matches!(role, RootAdmin | Admin)
        }
        OnboardClient { agent } | UpdateClient { agent } | OpenAccount { agent } => {
            role == Agent && actor.is(agent)
        }
        MoveMoney { agent }
        | ManageAccount { agent }
        | DraftMail { agent }
        | SendMail { agent } => role == Agent && actor.is(agent),
        ListClients => matches!(role, Agent | Auditor),
        ReadClient { agent } | ReadTransactions { agent } => {
            (role == Agent && actor.is(agent)) || role == Auditor
        }
        ReadAccount { agent } => {
            (role == Agent && actor.is(agent)) || matches!(role, Auditor | Worker)
        }
        RecordExternalTransaction | ReadForExport => role == Worker,
        ReadAudit => role == Auditor,
        IssueDigest => matches!(role, Auditor | Admin | RootAdmin),
        LookUpPayee => role == Agent,
    };
    if allowed {
        return Ok(());
    }
    Err(Denied(match action {
        CreateStaff { .. } | ManageStaff { .. } | ChangeStaffRole { .. } => {
            "only the root admin manages admins, and only admins manage agents and auditors"
        }
        ReadStaff | ReadSystemLog | RebuildReadModels | EraseClient => {
            "only admins and the root admin may do this"
        }
        RecordExternalTransaction | ReadForExport => "only integration workers may do this",
        ReadAudit => "only auditors may read the audit trail",
        IssueDigest => "only auditors and admins may have a digest signed",
        LookUpPayee => "only agents make transfers",
        _ if role == Agent => "this client is assigned to another agent",
        _ => "your role may not do this",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Role::*;

    /// Every action, once aimed at the caller's own clients and once at another agent's.
    fn actions(me: StaffId, other: StaffId) -> Vec<(&'static str, Action)> {
        let mut all = vec![
            ("create root-admin", CreateStaff { role: RootAdmin }),
            ("create admin", CreateStaff { role: Admin }),
            ("create agent", CreateStaff { role: Agent }),
            ("create auditor", CreateStaff { role: Auditor }),
            ("create worker", CreateStaff { role: Worker }),
            ("manage root-admin", ManageStaff { role: RootAdmin }),
            ("manage admin", ManageStaff { role: Admin }),
            ("manage agent", ManageStaff { role: Agent }),
            ("manage auditor", ManageStaff { role: Auditor }),
            (
                "agent->auditor",
                ChangeStaffRole {
                    from: Agent,
                    to: Auditor,
                },
            ),
            (
                "auditor->agent",
                ChangeStaffRole {
                    from: Auditor,
                    to: Agent,
                },
            ),
            (
                "agent->admin",
                ChangeStaffRole {
                    from: Agent,
                    to: Admin,
                },
            ),
            (
                "admin->agent",
                ChangeStaffRole {
                    from: Admin,
                    to: Agent,
                },
            ),
            (
                "agent->agent",
                ChangeStaffRole {
                    from: Agent,
                    to: Agent,
                },
            ),
            ("read staff", ReadStaff),
            ("list clients", ListClients),
            ("record external", RecordExternalTransaction),
            ("read for export", ReadForExport),
            ("read system log", ReadSystemLog),
            ("read audit", ReadAudit),
            ("issue digest", IssueDigest),
            ("rebuild", RebuildReadModels),
            ("erase client", EraseClient),
            ("look up payee", LookUpPayee),
        ];
        for (whose, agent) in [("own", me), ("other's", other)] {
            let owned: [(&str, Action); 10] = [
                ("onboard", OnboardClient { agent }),
                ("read client", ReadClient { agent }),
                ("update client", UpdateClient { agent }),
                ("open account", OpenAccount { agent }),
                ("read account", ReadAccount { agent }),
                ("move money", MoveMoney { agent }),
                ("manage account", ManageAccount { agent }),
                ("read transactions", ReadTransactions { agent }),
                ("draft mail", DraftMail { agent }),
                ("send mail", SendMail { agent }),
            ];
            for (name, action) in owned {
                let label: &'static str = Box::leak(format!("{name} ({whose})").into_boxed_str());
                all.push((label, action));
            }
        }
        all
    }

    /// The allowed (role, action) pairs; everything else must be denied.
    fn allowed(role: Role, action: &str) -> bool {
        let own = action.ends_with("(own)");
        let base = action.split(" (").next().unwrap();
        match role {
            RootAdmin => matches!(
                base,
                "create admin"
                    | "manage admin"
                    | "read staff"
                    | "read system log"
                    | "rebuild"
                    | "erase client"
                    | "issue digest"
            ),
            Admin => matches!(
                base,
                "create agent"
                    | "create auditor"
                    | "manage agent"
                    | "manage auditor"
                    | "agent->auditor"
                    | "auditor->agent"
                    | "read staff"
                    | "read system log"
                    | "rebuild"
                    | "erase client"
                    | "issue digest"
            ),
            Agent => {
                base == "list clients"
                    || base == "look up payee"
                    || (own
                        && matches!(
                            base,
                            "onboard"
                                | "read client"
                                | "update client"
                                | "open account"
                                | "read account"
                                | "move money"
                                | "manage account"
                                | "read transactions"
                                | "draft mail"
                                | "send mail"
                        ))
            }
            Auditor => matches!(
                base,
                "list clients"
                    | "read client"
                    | "read account"
                    | "read transactions"
                    | "read audit"
                    | "issue digest"
            ),
            Worker => matches!(base, "record external" | "read for export" | "read account"),
        }
    }

    #[test]
    fn every_role_against_every_action() {
        let me = StaffId::new();
        let other = StaffId::new();
        let mut checked = 0;
        for role in Role::ALL {
            let actor = Actor::new(me.to_string(), role);
            for (name, action) in actions(me, other) {
                let expected = allowed(role, name);
                let decision = authorize(&actor, action);
                assert_eq!(decision.is_ok(), expected, "{role} / {name}: {decision:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 5 * 44);
    }

    #[test]
    fn an_agent_is_told_the_client_is_someone_else_s() {
        let actor = Actor::new(StaffId::new().to_string(), Agent);
        let denied = authorize(
            &actor,
            ReadClient {
                agent: StaffId::new(),
            },
        )
        .unwrap_err();
        assert_eq!(denied.0, "this client is assigned to another agent");
    }

    #[test]
    fn roles_round_trip_through_group_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
        assert!(!Worker.is_staff());
    }
}
