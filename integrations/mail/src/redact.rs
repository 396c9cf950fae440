//! Personal data never reaches a model: names, email addresses, phone numbers and ids
//! in a prompt are replaced by placeholders (`[[EMAIL_1]]`, …) before it leaves, and the
//! placeholders in the draft are put back. Known values (the client's names, address,
//! phone) are replaced wherever they appear; patterns catch the rest.

use regex::Regex;
use std::sync::LazyLock;

static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}").unwrap());
/// An id as the API shows them (UUIDs: clients, accounts, transactions).
static ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b").unwrap()
});
/// Seven or more digits, with the separators phone numbers and account numbers use.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\+?\d[\d ()./-]{5,}\d").unwrap());

/// The replacements made in one text, to undo them in the answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// (placeholder, original), in the order they were made.
    replaced: Vec<(String, String)>,
}

impl Redaction {
    pub fn count(&self) -> usize {
        self.replaced.len()
    }

    fn placeholder(&mut self, kind: &str, original: &str) -> String {
        if let Some((placeholder, _)) = self.replaced.iter().find(|(_, o)| o == original) {
            return placeholder.clone();
        }
        let n = self
            .replaced
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("[[{kind}_")))
            .count()
            + 1;
        let placeholder = format!("[[{kind}_{n}]]");
        self.replaced
            .push((placeholder.clone(), original.to_string()));
        placeholder
    }

    /// Puts the originals back where the model kept the placeholders.
    pub fn restore(&self, text: &str) -> String {
        self.replaced
            .iter()
            .fold(text.to_string(), |text, (placeholder, original)| {
                text.replace(placeholder, original)
            })
    }
}

/// Values known to be personal data, replaced wherever they appear (longest first, so a
/// full name goes before its parts).
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub names: Vec<String>,
    pub other: Vec<String>,
}

/// `text` with personal data replaced, and how to undo it.
pub fn redact(text: &str, known: &Known) -> (String, Redaction) {
    let mut redaction = Redaction::default();
    let mut out = text.to_string();
    // Patterns first: a name must not break up the address it is part of.
    for (kind, pattern) in [("EMAIL", &*EMAIL), ("ID", &*ID), ("NUMBER", &*NUMBER)] {
        let found: Vec<String> = pattern
            .find_iter(&out)
            .map(|m| m.as_str().to_string())
            .collect();
        for original in found {
            let placeholder = redaction.placeholder(kind, &original);
            out = out.replace(&original, &placeholder);
        }
    }
    let mut values: Vec<(&str, &String)> = known
        .names
        .iter()
        .map(|v| ("NAME", v))
        .chain(known.other.iter().map(|v| ("DETAIL", v)))
        .filter(|(_, v)| v.trim().chars().count() >= 2)
        .collect();
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (kind, value) in values {
        let pattern = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(value.trim())));
        let Ok(pattern) = pattern else { continue };
        if pattern.is_match(&out) {
            let placeholder = redaction.placeholder(kind, value.trim());
            out = pattern.replace_all(&out, placeholder.as_str()).into_owned();
        }
    }
    (out, redaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_leaves_as_placeholders_and_comes_back() {
        let known = Known {
            names: vec!["Ada".into(), "Lovelace".into(), "Ada Lovelace".into()],
            other: vec!["1 Main Street".into()],
        };
        let prompt = "Write to Ada Lovelace (ada@example.com, +353 1 234 5678) of 1 Main Street \
                      about account 01a2123b-4e1e-73ca-b227-f977847e4347. Ada asked twice.";
        let (redacted, redaction) = redact(prompt, &known);
        for secret in [
            "Ada",
            "Lovelace",
            "ada@example.com",
            "234 5678",
            "Main Street",
            "01a2123b",
        ] {
            assert!(!redacted.contains(secret), "{secret} leaked: {redacted}");
        }
        assert!(redacted.contains("[[NAME_1]]") && redacted.contains("[[EMAIL_1]]"));
        assert_eq!(redaction.restore(&redacted), prompt);
        let draft = "Dear [[NAME_2]], we wrote to [[EMAIL_1]].";
        assert!(redaction.restore(draft).contains("ada@example.com"));
    }

    #[test]
    fn text_without_personal_data_is_unchanged() {
        let (redacted, redaction) =
            redact("Thank the client for their loyalty.", &Known::default());
        assert_eq!(redacted, "Thank the client for their loyalty.");
        assert_eq!(redaction.count(), 0);
    }
}
