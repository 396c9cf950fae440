//! Account numbers people can read, say on the phone and type: `LL` + two check digits +
//! a 12-digit basic number, printed in groups of four (`LL70 0000 0000 0042`). The check
//! digits are ISO 7064 MOD 97-10 computed as ISO 13616 does for an IBAN, so a single
//! wrong digit or two swapped digits never reach another account.
//!
//! Numbers are allocated at opening from the store's sequence ([`AccountNumber::allocated`]).
//! Accounts opened before numbers existed get theirs from their id
//! ([`AccountNumber::derived`]), in a range the sequence never reaches.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

use crate::ids::AccountId;

const PREFIX: &str = "LL";
const DIGITS: usize = 12;
/// Allocated numbers stay below this; derived ones are at or above it.
const DERIVED_FROM: u64 = 900_000_000_000;
const LIMIT: u64 = 1_000_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountNumber(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNumberError {
    #[error("an account number is LL, two check digits and 12 digits (LL00 0000 0000 0000)")]
    Malformed,
    #[error("the check digits do not match: a digit is wrong or two are swapped")]
    CheckDigits,
    #[error("the account number sequence is exhausted")]
    Exhausted,
}

impl AccountNumber {
    /// The number for the store's `sequence`-th allocation (from 1).
    pub fn allocated(sequence: u64) -> Result<Self, AccountNumberError> {
        if sequence == 0 || sequence >= DERIVED_FROM {
            return Err(AccountNumberError::Exhausted);
        }
        Ok(AccountNumber(sequence))
    }

    /// The number of an account opened before numbers were allocated: from a hash of its
    /// id, in the range the sequence never reaches. Pure, so every reader of the old
    /// events (replay, projections, audit) gives the account the same number.
    pub fn derived(account: AccountId) -> Self {
        let digest = Sha256::digest(account.as_uuid().as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        AccountNumber(DERIVED_FROM + u64::from_be_bytes(head) % (LIMIT - DERIVED_FROM))
    }

    /// Accepts any case, with or without spaces or dashes.
    pub fn parse(text: &str) -> Result<Self, AccountNumberError> {
        let compact: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        let (prefix, rest) = compact
            .split_at_checked(PREFIX.len())
            .ok_or(AccountNumberError::Malformed)?;
        if prefix != PREFIX || rest.len() != 2 + DIGITS || !rest.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(AccountNumberError::Malformed);
        }
        let (check, basic) = rest.split_at(2);
        if check != check_digits(basic) {
            return Err(AccountNumberError::CheckDigits);
        }
        basic
            .parse()
            .map(AccountNumber)
            .map_err(|_| AccountNumberError::Malformed)
    }

    /// Without spaces, as stored and searched: `LL70000000000042`.
    pub fn compact(&self) -> String {
        let basic = format!("{:0width$}", self.0, width = DIGITS);
        format!("{PREFIX}{}{basic}", check_digits(&basic))
    }
}

/// ISO 13616: the basic number, then the prefix as digits (A = 10 … Z = 35), then "00";
/// the check digits are 98 minus that number mod 97.
fn check_digits(basic: &str) -> String {
    let letters = PREFIX
        .bytes()
        .map(|b| u32::from(b - b'A') + 10)
        .map(|n| n.to_string());
    let digits = basic
        .chars()
        .map(String::from)
        .chain(letters)
        .chain(["00".to_string()]);
    format!("{:02}", 98 - mod97(&digits.collect::<String>()))
}

fn mod97(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |rest, b| (rest * 10 + u32::from(b - b'0')) % 97)
}

impl fmt::Display for AccountNumber {
    /// Groups of four: `LL70 0000 0000 0042`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compact = self.compact();
        let groups: Vec<&str> = compact
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        f.write_str(&groups.join(" "))
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact())
    }
}

impl FromStr for AccountNumber {
    type Err = AccountNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AccountNumber {
    type Error = AccountNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountNumber> for String {
    fn from(number: AccountNumber) -> Self {
        number.compact()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check is the IBAN's: the same arithmetic validates a published IBAN.
    #[test]
    fn the_check_is_iso_13616s() {
        // GB82 WEST 1234 5698 7654 32: "WEST12345698765432" + "GB82" as digits ≡ 1 (mod 97).
        let rearranged = "WEST12345698765432GB82"
            .chars()
            .map(|c| c.to_digit(36).unwrap().to_string())
            .collect::<String>();
        assert_eq!(mod97(&rearranged), 1);
        let number = AccountNumber::allocated(42).unwrap().compact();
        // Worked by hand: 000000000042 212100 mod 97 = 28, and 98 - 28 = 70.
        assert_eq!(number, "LL70000000000042");
        let (head, basic) = number.split_at(4);
        let rearranged = format!("{basic}{}{}", "2121", &head[2..]);
        assert_eq!(mod97(&rearranged), 1, "{number}");
    }

    #[test]
    fn numbers_print_in_groups_and_parse_back_in_any_form() {
        let number = AccountNumber::allocated(42).unwrap();
        let printed = number.to_string();
        assert_eq!(printed.len(), 19);
        assert_eq!(&printed[4..], " 0000 0000 0042");
        for form in [
            printed.clone(),
            number.compact(),
            printed.to_lowercase(),
            printed.replace(' ', "-"),
        ] {
            assert_eq!(AccountNumber::parse(&form), Ok(number), "{form}");
        }
    }

    #[test]
    fn every_single_digit_error_and_adjacent_swap_is_caught() {
        let compact = AccountNumber::allocated(123_456_789_012 % DERIVED_FROM)
            .unwrap()
            .compact();
        let bytes = compact.as_bytes();
        for i in 2..bytes.len() {
            for digit in b'0'..=b'9' {
                if digit == bytes[i] {
                    continue;
                }
                let mut typo = bytes.to_vec();
                typo[i] = digit;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(
                    AccountNumber::parse(&typo),
                    Err(AccountNumberError::CheckDigits),
                    "{typo}"
                );
            }
            if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
                let mut swapped = bytes.to_vec();
                swapped.swap(i, i + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert!(AccountNumber::parse(&swapped).is_err(), "{swapped}");
            }
        }
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for text in [
            "",
            "LL",
            "LL74",
            "XX70000000000042",
            "LL7400000000004",
            "LL740000000004211",
            "LL7400000000004X",
        ] {
            assert_eq!(
                AccountNumber::parse(text),
                Err(AccountNumberError::Malformed),
                "{text}"
            );
        }
    }

    #[test]
    fn derived_numbers_are_stable_and_outside_the_allocated_range() {
        let id: AccountId = "01966c5e-7f4a-7b3c-9d2e-1a2b3c4d5e6f".parse().unwrap();
        let derived = AccountNumber::derived(id);
        assert_eq!(derived, AccountNumber::derived(id));
        assert!(derived.0 >= DERIVED_FROM && derived.0 < LIMIT);
        assert_eq!(AccountNumber::parse(&derived.to_string()), Ok(derived));
        assert_eq!(
            AccountNumber::allocated(DERIVED_FROM),
            Err(AccountNumberError::Exhausted)
        );
        assert_eq!(
            AccountNumber::allocated(0),
            Err(AccountNumberError::Exhausted)
        );
    }

    #[test]
    fn numbers_serialize_compact_and_refuse_bad_check_digits() {
        let number = AccountNumber::allocated(7).unwrap();
        let json = serde_json::to_value(number).unwrap();
        assert_eq!(json, serde_json::json!(number.compact()));
        assert_eq!(
            serde_json::from_value::<AccountNumber>(json).unwrap(),
            number
        );
        assert!(
            serde_json::from_value::<AccountNumber>(serde_json::json!("LL00000000000007")).is_err()
        );
    }
}
