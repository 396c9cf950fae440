//! The core system's transaction files (inbound). UTF-8 CSV (RFC 4180: fields with
//! commas or quotes are quoted), a header line, then one transaction per line:
//!
//! ```text
//! external_id,account_id,direction,amount_minor,currency,booked_at,description
//! core-1001,01936f5e-2c3a-7b4d-9e8f-0a1b2c3d4e5f,credit,125000,EUR,2026-11-24T09:00:00Z,Salary November
//! ```
//!
//! - `external_id`: the core system's transaction id, 1–100 printable characters,
//!   unique across all files (a repeat in a later file has no effect).
//! - `account_id`: a Ledgerline account id.
//! - `direction`: `credit` (money in) or `debit` (money out).
//! - `amount_minor`: a positive whole number of minor units (cents).
//! - `currency`: ISO 4217, the account's currency.
//! - `booked_at`: RFC 3339 with an offset.
//! - `description`: optional, at most 200 characters.
//!
//! Every line is checked; one bad line rejects the whole file.

use chrono::{DateTime, Utc};
use domain::{AccountId, Currency};
use std::collections::HashSet;

pub const HEADER: [&str; 7] = [
    "external_id",
    "account_id",
    "direction",
    "amount_minor",
    "currency",
    "booked_at",
    "description",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Credit,
    Debit,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }
}

/// One valid transaction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based, counting the header.
    pub number: usize,
    pub external_id: String,
    pub account_id: AccountId,
    pub direction: Direction,
    pub amount_minor: i64,
    pub currency: Currency,
    pub booked_at: DateTime<Utc>,
    pub description: Option<String>,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub number: usize,
    pub reason: String,
}

/// The report written next to a rejected file: one line per problem.
pub fn report(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(|e| format!("line {}: {}\n", e.number, e.reason))
        .collect()
}

/// Every line of `bytes`, or every problem found.
pub fn parse(bytes: &[u8]) -> Result<Vec<Line>, Vec<LineError>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![LineError {
            number: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            reason: "not UTF-8".into(),
        }]
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let (mut lines, mut errors, mut seen) = (Vec::new(), Vec::new(), HashSet::new());
    for (index, record) in reader.records().enumerate() {
        let number = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                errors.push(LineError {
                    number,
                    reason: format!("not CSV: {error}"),
                });
                continue;
            }
        };
        if number == 1 {
            if record.iter().map(str::trim).ne(HEADER) {
                errors.push(LineError {
                    number,
                    reason: format!("the header must be `{}`", HEADER.join(",")),
                });
            }
            continue;
        }
        match line(number, &record) {
            Ok(line) if !seen.insert(line.external_id.clone()) => errors.push(LineError {
                number,
                reason: format!("external_id {} appears twice in the file", line.external_id),
            }),
            Ok(line) => lines.push(line),
            Err(reasons) => errors.extend(
                reasons
                    .into_iter()
                    .map(|reason| LineError { number, reason }),
            ),
        }
    }
    if lines.is_empty() && errors.is_empty() {
        errors.push(LineError {
            number: 1,
            reason: "no transactions".into(),
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

fn line(number: usize, record: &csv::StringRecord) -> Result<Line, Vec<String>> {
    if record.len() != HEADER.len() {
        return Err(vec![format!(
            "{} fields, not {}",
            record.len(),
            HEADER.len()
        )]);
    }
    let mut reasons = Vec::new();
    let field = |n: usize| record.get(n).unwrap_or_default().trim();
    let external_id = field(0).to_string();
    if external_id.is_empty()
        || external_id.chars().count() > 100
        || external_id.chars().any(char::is_control)
    {
        reasons.push("external_id must be 1 to 100 printable characters".into());
    }
    let account_id = field(1).parse::<AccountId>().map_err(|_| {
        reasons.push(format!("account_id `{}` is not an account id", field(1)));
    });
    let direction = match field(2) {
        "credit" => Ok(Direction::Credit),
        "debit" => Ok(Direction::Debit),
        other => {
            reasons.push(format!("direction `{other}` is not credit or debit"));
            Err(())
        }
    };
    let amount_minor = match field(3).parse::<i64>() {
        Ok(amount) if amount > 0 => Ok(amount),
        _ => {
            reasons.push(format!(
                "amount_minor `{}` is not a positive whole number",
                field(3)
            ));
            Err(())
        }
    };
    let currency = Currency::parse(field(4))
        .map_err(|_| reasons.push(format!("currency `{}` is not ISO 4217", field(4))));
    let booked_at = DateTime::parse_from_rfc3339(field(5))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| reasons.push(format!("booked_at `{}` is not RFC 3339", field(5))));
    let description = Some(field(6).to_string()).filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 200 || d.chars().any(char::is_control))
    {
        reasons.push("description must be at most 200 printable characters".into());
    }
    match (account_id, direction, amount_minor, currency, booked_at) {
        (Ok(account_id), Ok(direction), Ok(amount_minor), Ok(currency), Ok(booked_at))
            if reasons.is_empty() =>
        {
            Ok(Line {
                number,
                external_id,
                account_id,
                direction,
                amount_minor,
                currency,
                booked_at,
                description,
            })
        }
        _ => Err(reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "01936f5e-2c3a-7b4d-9e8f-0a1b2c3d4e5f";

    fn file(lines: &[&str]) -> Vec<u8> {
        let mut text = HEADER.join(",");
        for line in lines {
            text.push('\n');
            text.push_str(line);
        }
        text.into_bytes()
    }

    #[test]
    fn reads_good_lines_with_quoted_fields() {
        let lines = parse(&file(&[
            &format!(
                "core-1,{ACCOUNT},credit,125000,EUR,2026-11-24T09:00:00Z,\"Salary, November\""
            ),
            &format!("core-2,{ACCOUNT},debit,300,EUR,2026-11-24T10:00:00+01:00,"),
        ]))
        .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].description.as_deref(), Some("Salary, November"));
        assert_eq!(lines[1].direction, Direction::Debit);
        assert_eq!(lines[1].description, None);
        assert_eq!(lines[1].number, 3);
    }

    #[test]
    fn names_every_bad_line_and_why() {
        let errors = parse(&file(&[
            &format!("core-1,{ACCOUNT},credit,125000,EUR,2026-11-24T09:00:00Z,ok"),
            "core-2,not-an-id,sideways,-5,EURO,yesterday,x",
            &format!("core-1,{ACCOUNT},credit,1,EUR,2026-11-24T09:00:00Z,again"),
            "too,few",
        ]))
        .unwrap_err();
        let text = report(&errors);
        for expected in [
            "line 3: account_id",
            "line 3: direction",
            "line 3: amount_minor",
            "line 3: currency",
            "line 3: booked_at",
            "line 4: external_id core-1 appears twice",
            "line 5: 2 fields",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }

    #[test]
    fn a_wrong_header_or_an_empty_file_is_refused() {
        assert!(parse(b"id,account\n").is_err());
        assert_eq!(parse(&file(&[])).unwrap_err()[0].reason, "no transactions");
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
