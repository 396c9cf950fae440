//! A client's personal and contact data as value types that cannot hold invalid values,
//! and the builder that assembles them (validating every field on `build()`).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ValidationErrors;

/// ISO 3166-1 alpha-2 country codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG \
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacters,
    #[error("is not a valid email address")]
    Email,
    #[error("is not a valid phone number (7 to 15 digits, optionally starting with +)")]
    Phone,
    #[error("is not an ISO 3166-1 alpha-2 country code")]
    Country,
    #[error("must be one of female, male, other, unspecified")]
    Gender,
    #[error("must be a date in the past, at most 150 years ago")]
    DateOfBirth,
}

/// Trimmed, non-empty text of bounded length without control characters.
fn text(value: &str, max: usize) -> Result<String, ContactError> {
    let value = value.trim();
    if value.is_empty() {
        Err(ContactError::Empty)
    } else if value.chars().count() > max {
        Err(ContactError::TooLong(max))
    } else if value.chars().any(char::is_control) {
        Err(ContactError::ControlCharacters)
    } else {
        Ok(value.to_string())
    }
}

/// A syntactically valid email address (lower-cased domain). Deliverability is not
/// something a parser can know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, ContactError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ContactError::Empty);
        }
        if value.len() > 254 {
            return Err(ContactError::TooLong(254));
        }
        let (local, domain) = value.rsplit_once('@').ok_or(ContactError::Email)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(ContactError::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number normalised to `+` and digits (spaces, dashes, dots and brackets are
/// dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: &str) -> Result<Self, ContactError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ContactError::Empty);
        }
        let (plus, rest) = match value.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", value),
        };
        let mut digits = String::new();
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ContactError::Phone),
            }
        }
        if (7..=15).contains(&digits.len()) {
            Ok(Phone(format!("{plus}{digits}")))
        } else {
            Err(ContactError::Phone)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Phone {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Phone::parse(&value)
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> Self {
        phone.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unspecified,
}

impl Gender {
    pub fn parse(value: &str) -> Result<Self, ContactError> {
        match value {
            "female" => Ok(Gender::Female),
            "male" => Ok(Gender::Male),
            "other" => Ok(Gender::Other),
            "unspecified" => Ok(Gender::Unspecified),
            _ => Err(ContactError::Gender),
        }
    }
}

/// A postal address; `state` may be empty where a country has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub line1: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub postal_code: String,
}

/// Builds an [`Address`], validating every field on `build()`.
#[derive(Debug, Default, Clone)]
pub struct AddressBuilder {
    line1: String,
    city: String,
    state: String,
    country: String,
    postal_code: String,
}

impl AddressBuilder {
    pub fn line1(mut self, value: impl Into<String>) -> Self {
        self.line1 = value.into();
        self
    }
    pub fn city(mut self, value: impl Into<String>) -> Self {
        self.city = value.into();
        self
    }
    pub fn state(mut self, value: impl Into<String>) -> Self {
        self.state = value.into();
        self
    }
    pub fn country(mut self, value: impl Into<String>) -> Self {
        self.country = value.into();
        self
    }
    pub fn postal_code(mut self, value: impl Into<String>) -> Self {
        self.postal_code = value.into();
        self
    }

    pub fn build(self) -> Result<Address, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let line1 = errors.check("line1", text(&self.line1, 200));
        let city = errors.check("city", text(&self.city, 100));
        let state = if self.state.trim().is_empty() {
            Some(String::new())
        } else {
            errors.check("state", text(&self.state, 100))
        };
        let country = self.country.trim().to_ascii_uppercase();
        let country_ok = country.len() == 2 && COUNTRIES.split(' ').any(|code| code == country);
        if !country_ok {
            errors.add("country", ContactError::Country.to_string());
        }
        let postal_code = errors.check("postal_code", text(&self.postal_code, 20));
        errors.finish(|| Address {
            line1: line1.unwrap_or_default(),
            city: city.unwrap_or_default(),
            state: state.unwrap_or_default(),
            country,
            postal_code: postal_code.unwrap_or_default(),
        })
    }
}

impl Address {
    pub fn builder() -> AddressBuilder {
        AddressBuilder::default()
    }
}

/// Everything the bank knows about a person when onboarding them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalDetails {
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: NaiveDate,
    pub gender: Gender,
    pub email: Email,
    pub phone: Phone,
    pub address: Address,
}

/// Builds [`PersonalDetails`] from raw input; `build(today)` validates every field and
/// reports all problems at once. `today` is injected: the domain reads no clock.
#[derive(Debug, Default, Clone)]
pub struct PersonalDetailsBuilder {
    first_name: String,
    last_name: String,
    date_of_birth: String,
    gender: String,
    email: String,
    phone: String,
    address: AddressBuilder,
}

impl PersonalDetailsBuilder {
    pub fn first_name(mut self, value: impl Into<String>) -> Self {
        self.first_name = value.into();
        self
    }
    pub fn last_name(mut self, value: impl Into<String>) -> Self {
        self.last_name = value.into();
        self
    }
    /// ISO 8601 date, `YYYY-MM-DD`.
    pub fn date_of_birth(mut self, value: impl Into<String>) -> Self {
        self.date_of_birth = value.into();
        self
    }
    pub fn gender(mut self, value: impl Into<String>) -> Self {
        self.gender = value.into();
        self
    }
    pub fn email(mut self, value: impl Into<String>) -> Self {
        self.email = value.into();
        self
    }
    pub fn phone(mut self, value: impl Into<String>) -> Self {
        self.phone = value.into();
        self
    }
    pub fn address(mut self, address: AddressBuilder) -> Self {
        self.address = address;
        self
    }

    pub fn build(self, today: NaiveDate) -> Result<PersonalDetails, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let first_name = errors.check("first_name", text(&self.first_name, 100));
        let last_name = errors.check("last_name", text(&self.last_name, 100));
        let date_of_birth = errors.check(
            "date_of_birth",
            parse_birth_date(&self.date_of_birth, today),
        );
        let gender = errors.check("gender", Gender::parse(&self.gender));
        let email = errors.check("email", Email::parse(&self.email));
        let phone = errors.check("phone", Phone::parse(&self.phone));
        let address = match self.address.build() {
            Ok(address) => Some(address),
            Err(nested) => {
                errors.nest("address", nested);
                None
            }
        };
        match (
            first_name,
            last_name,
            date_of_birth,
            gender,
            email,
            phone,
            address,
        ) {
            (
                Some(first_name),
                Some(last_name),
                Some(date_of_birth),
                Some(gender),
                Some(email),
                Some(phone),
                Some(address),
            ) if errors.is_empty() => Ok(PersonalDetails {
                first_name,
                last_name,
                date_of_birth,
                gender,
                email,
                phone,
                address,
            }),
            _ => Err(errors),
        }
    }
}

impl PersonalDetails {
    pub fn builder() -> PersonalDetailsBuilder {
        PersonalDetailsBuilder::default()
    }
}

fn parse_birth_date(value: &str, today: NaiveDate) -> Result<NaiveDate, ContactError> {
    let date = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| ContactError::DateOfBirth)?;
    if date >= today || today.year() - date.year() > 150 {
        return Err(ContactError::DateOfBirth);
    }
    Ok(date)
}

/// A free-text line such as a transaction description: bounded, no control characters.
pub fn description(value: &str) -> Result<String, ContactError> {
    text(value, 500)
}

/// A person's or account's display text with the given bound.
pub fn bounded_text(value: &str, max: usize) -> Result<String, ContactError> {
    text(value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn address() -> AddressBuilder {
        Address::builder()
            .line1("1 Main Street")
            .city("Dublin")
            .state("")
            .country("ie")
            .postal_code("D01 F5P2")
    }

    fn valid() -> PersonalDetailsBuilder {
        PersonalDetails::builder()
            .first_name(" Ada ")
            .last_name("Lovelace")
            .date_of_birth("1990-12-10")
            .gender("female")
            .email("Ada@Example.COM")
            .phone("+353 1 234-5678")
            .address(address())
    }

    #[test]
    fn a_valid_person_builds_normalised() {
        let person = valid().build(today()).unwrap();
        assert_eq!(person.first_name, "Ada");
        assert_eq!(person.email.as_str(), "Ada@example.com");
        assert_eq!(person.phone.as_str(), "+35312345678");
        assert_eq!(person.address.country, "IE");
    }

    #[test]
    fn every_invalid_field_is_named() {
        let errors = PersonalDetails::builder()
            .first_name("")
            .last_name("x".repeat(101))
            .date_of_birth("2030-01-01")
            .gender("robot")
            .email("not-an-email")
            .phone("12")
            .address(Address::builder().country("XX"))
            .build(today())
            .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "first_name",
                "last_name",
                "date_of_birth",
                "gender",
                "email",
                "phone",
                "address.line1",
                "address.city",
                "address.country",
                "address.postal_code"
            ]
        );
    }

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.co",
            "a@.co",
            "a b@c.co",
            "a..b@c.co",
            "a@b..co",
            "a@-b.co",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(Phone::parse("0123456").is_ok());
        assert!(Phone::parse("+1 (555) 010-9999").is_ok());
        for bad in ["", "123", "+12345678901234567", "12a4567", "++1234567"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(text("a\u{0}b", 10), Err(ContactError::ControlCharacters));
        assert_eq!(description("   "), Err(ContactError::Empty));
    }
}
