//! Which service answers which request: the load balancer's listener rules in AWS
//! (infra/ declares them from `topology.json`) and the local front door's routing, from
//! one table. Rules are tried by priority; the first whose methods and paths match wins.

use serde::Serialize;

/// Where a rule sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    Commands,
    Queries,
    Mail,
    /// Answered 404 at the edge: what only operators may read.
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub name: &'static str,
    pub priority: u16,
    /// Any method when empty.
    pub methods: &'static [&'static str],
    /// The load balancer's path patterns: `*` matches any run of characters.
    pub paths: &'static [&'static str],
    pub target: Target,
}

const READS: &[&str] = &["GET", "HEAD"];

/// The rules, by priority.
pub const ROUTES: &[Route] = &[
    Route {
        name: "Mail",
        priority: 10,
        methods: &[],
        paths: &["/v1/mail", "/v1/mail/*"],
        target: Target::Mail,
    },
    Route {
        name: "Internal",
        priority: 20,
        methods: &[],
        paths: &["/metrics", "/health/*"],
        target: Target::NotFound,
    },
    // A transfer's progress is the command service's: it drives transfers from the
    // event store, and the 202 of a transfer points there.
    Route {
        name: "TransferProgress",
        priority: 25,
        methods: READS,
        paths: &["/v1/transfers/*"],
        target: Target::Commands,
    },
    // A rebuild is asked of the query service, which explains that in AWS `crm aws
    // rebuild` does it.
    Route {
        name: "Rebuild",
        priority: 26,
        methods: &[],
        paths: &["/v1/admin/rebuild"],
        target: Target::Queries,
    },
    // Verification runs are asked of the query service, whose worker runs them; so are
    // digests signed on demand, the audit API's too.
    Route {
        name: "Verifications",
        priority: 27,
        methods: &[],
        paths: &[
            "/v1/audit/verifications",
            "/v1/audit/verifications/*",
            "/v1/audit/digests",
        ],
        target: Target::Queries,
    },
    Route {
        name: "Queries",
        priority: 30,
        methods: READS,
        paths: &["/v1/*"],
        target: Target::Queries,
    },
    Route {
        name: "Commands",
        priority: 40,
        methods: &[],
        paths: &["/v1/*"],
        target: Target::Commands,
    },
];

/// Where `method path` goes; `None` for a path no rule takes (the listener's default).
pub fn route(method: &str, path: &str) -> Option<Target> {
    ROUTES
        .iter()
        .find(|rule| {
            (rule.methods.is_empty() || rule.methods.contains(&method))
                && rule.paths.iter().any(|pattern| matches(pattern, path))
        })
        .map(|rule| rule.target)
}

/// A load-balancer path pattern (case-sensitive; `*` any run of characters, `?` one).
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.chars().next() {
        None => path.is_empty(),
        Some('*') => {
            let rest = &pattern[1..];
            path.char_indices()
                .map(|(i, _)| i)
                .chain([path.len()])
                .any(|i| matches(rest, &path[i..]))
        }
        Some(c) => {
            let mut chars = path.chars();
            match chars.next() {
                Some(p) if p == c || c == '?' => matches(&pattern[c.len_utf8()..], chars.as_str()),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_where_the_load_balancer_sends_them() {
        for (method, path, target) in [
            ("POST", "/v1/mail", Some(Target::Mail)),
            ("GET", "/v1/mail/drafts", Some(Target::Mail)),
            ("GET", "/metrics", Some(Target::NotFound)),
            ("GET", "/health/ready", Some(Target::NotFound)),
            ("GET", "/v1/transfers/t-1", Some(Target::Commands)),
            ("POST", "/v1/transfers", Some(Target::Commands)),
            ("POST", "/v1/admin/rebuild", Some(Target::Queries)),
            ("POST", "/v1/audit/verifications", Some(Target::Queries)),
            ("GET", "/v1/audit/verifications/r-1", Some(Target::Queries)),
            ("POST", "/v1/audit/digests", Some(Target::Queries)),
            ("GET", "/v1/clients", Some(Target::Queries)),
            ("HEAD", "/v1/clients/c-1", Some(Target::Queries)),
            ("POST", "/v1/clients", Some(Target::Commands)),
            ("DELETE", "/v1/staff/s-1", Some(Target::Commands)),
            ("GET", "/v1", None),
            ("GET", "/index.html", None),
            ("GET", "/V1/clients", None),
        ] {
            assert_eq!(route(method, path), target, "{method} {path}");
        }
    }

    #[test]
    fn priorities_rise_and_are_unique() {
        let priorities: Vec<u16> = ROUTES.iter().map(|r| r.priority).collect();
        assert!(priorities.windows(2).all(|w| w[0] < w[1]), "{priorities:?}");
    }

    #[test]
    fn patterns_match_as_the_load_balancer_does() {
        assert!(matches("/v1/*", "/v1/"));
        assert!(matches("/v1/*", "/v1/a/b"));
        assert!(!matches("/v1/*", "/v1"));
        assert!(matches("/a?c", "/abc"));
        assert!(matches("*", ""));
        assert!(!matches("/v1/mail", "/v1/mail/"));
    }
}
