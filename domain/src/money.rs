//! Money: an integer count of minor units in an ISO 4217 currency. Never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Active ISO 4217 codes with their number of minor units (digits after the point).
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The largest amount one command may move or hold: 10^15 minor units (ten trillion
/// euros). Far above any real balance, far below `i64::MAX`, so sums never overflow.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("the amount must be positive")]
    NotPositive,
    #[error("the amount must not be negative")]
    Negative,
    #[error("the amount exceeds the maximum of {MAX_AMOUNT_MINOR} minor units")]
    TooLarge,
}

/// An ISO 4217 currency; only active codes parse.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(u8);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        ISO_4217
            .iter()
            .position(|(known, _)| *known == code)
            .map(|index| Currency(index as u8))
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(16).collect()))
    }

    pub fn code(&self) -> &'static str {
        ISO_4217[usize::from(self.0)].0
    }

    /// Digits after the decimal point (2 for EUR, 0 for JPY, 3 for BHD).
    pub fn minor_units(&self) -> u8 {
        ISO_4217[usize::from(self.0)].1
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::parse("EUR").expect("EUR is an ISO 4217 code")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Currency::parse(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.code().to_string()
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money held (a balance, an opening deposit): ≥ 0 and within
/// [`MAX_AMOUNT_MINOR`]. The fields are private and deserializing checks them, so no
/// path — an event, a message, a test — can hold a negative or oversized amount.
/// Money that moves is an [`Amount`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "MoneyFields")]
#[schema(
    description = "An amount of money: an integer count of minor units (≥ 0; amounts in commands > 0) and an ISO 4217 code."
)]
pub struct Money {
    /// Integer count of minor units (cents for EUR).
    amount_minor: i64,
    /// ISO 4217 code.
    #[schema(value_type = String, example = "EUR")]
    currency: Currency,
}

/// Money as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyFields {
    amount_minor: i64,
    currency: Currency,
}

impl TryFrom<MoneyFields> for Money {
    type Error = MoneyError;

    fn try_from(fields: MoneyFields) -> Result<Self, Self::Error> {
        Money::non_negative(fields.amount_minor, fields.currency)
    }
}

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Money {
            amount_minor: 0,
            currency,
        }
    }

    /// Money that is strictly positive and within bounds (see also [`Amount`]).
    pub fn positive(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        Amount::new(amount_minor, currency).map(Money::from)
    }

    /// An amount to hold (an opening deposit may be zero).
    pub fn non_negative(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor < 0 {
            Err(MoneyError::Negative)
        } else if amount_minor > MAX_AMOUNT_MINOR {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Money {
                amount_minor,
                currency,
            })
        }
    }

    /// Integer count of minor units (cents for EUR).
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// `None` on a currency mismatch or when the sum leaves the allowed range.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let sum = self.amount_minor.checked_add(other.amount_minor)?;
        Money::non_negative(sum, self.currency).ok()
    }

    /// `None` on a currency mismatch or when the result would be negative.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        let difference = self.amount_minor.checked_sub(other.amount_minor)?;
        Money::non_negative(difference, self.currency).ok()
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }
}

/// Money that moves (a deposit, a withdrawal, a transfer): strictly positive and within
/// bounds. Every command that moves money takes one, so a zero or negative movement
/// cannot be asked for, whatever path the command comes by. Serialized as [`Money`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Money", into = "Money")]
pub struct Amount(Money);

impl Amount {
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Money::non_negative(amount_minor, currency).map(Amount)
    }

    pub fn amount_minor(&self) -> i64 {
        self.0.amount_minor
    }

    pub fn currency(&self) -> Currency {
        self.0.currency
    }
}

impl TryFrom<Money> for Amount {
    type Error = MoneyError;

    fn try_from(money: Money) -> Result<Self, Self::Error> {
        Amount::new(money.amount_minor, money.currency)
    }
}

impl From<Amount> for Money {
    fn from(amount: Amount) -> Money {
        amount.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_units());
        let scale = 10i64.pow(digits);
        let (whole, fraction) = (self.amount_minor / scale, (self.amount_minor % scale).abs());
        if digits == 0 {
            write!(f, "{whole} {}", self.currency)
        } else {
            write!(
                f,
                "{whole}.{fraction:0width$} {}",
                self.currency,
                width = digits as usize
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn only_iso_codes_parse() {
        assert_eq!(eur().code(), "EUR");
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().minor_units(), 3);
        for bad in ["eur", "EURO", "XXX", "", "ZZZ"] {
            assert!(Currency::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn amounts_to_move_are_positive_and_bounded() {
        assert!(Money::positive(1, eur()).is_ok());
        assert_eq!(Money::positive(0, eur()), Err(MoneyError::NotPositive));
        assert_eq!(Money::positive(-5, eur()), Err(MoneyError::NotPositive));
        assert_eq!(
            Money::positive(MAX_AMOUNT_MINOR + 1, eur()),
            Err(MoneyError::TooLarge)
        );
        assert!(Money::non_negative(0, eur()).is_ok());
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_negative_results() {
        let usd = Currency::parse("USD").unwrap();
        let ten = Money::positive(10, eur()).unwrap();
        assert_eq!(ten.checked_add(ten).unwrap().amount_minor, 20);
        assert!(ten.checked_add(Money::positive(1, usd).unwrap()).is_none());
        assert!(ten
            .checked_sub(Money::positive(11, eur()).unwrap())
            .is_none());
        assert!(ten.checked_sub(ten).unwrap().is_zero());
        let max = Money::non_negative(MAX_AMOUNT_MINOR, eur()).unwrap();
        assert!(max.checked_add(ten).is_none());
    }

    #[test]
    fn serializes_as_the_api_shape() {
        let money = Money::positive(12345, eur()).unwrap();
        let json = serde_json::to_value(money).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount_minor": 12345, "currency": "EUR"})
        );
        assert!(serde_json::from_value::<Money>(
            serde_json::json!({"amount_minor": 1, "currency": "ABC"})
        )
        .is_err());
        assert_eq!(money.to_string(), "123.45 EUR");
    }

    #[test]
    fn no_invalid_amount_can_be_deserialized() {
        let money = |amount: i64| serde_json::json!({"amount_minor": amount, "currency": "EUR"});
        assert!(serde_json::from_value::<Money>(money(-1)).is_err());
        assert!(serde_json::from_value::<Money>(money(MAX_AMOUNT_MINOR + 1)).is_err());
        assert!(serde_json::from_value::<Money>(serde_json::json!(
            {"amount_minor": 1, "currency": "EUR", "extra": true}
        ))
        .is_err());
        assert_eq!(
            serde_json::from_value::<Money>(money(0)).unwrap(),
            Money::zero(eur())
        );
        for bad in [0, -1, MAX_AMOUNT_MINOR + 1] {
            assert!(
                serde_json::from_value::<Amount>(money(bad)).is_err(),
                "{bad}"
            );
        }
        let amount: Amount = serde_json::from_value(money(5)).unwrap();
        assert_eq!((amount.amount_minor(), amount.currency()), (5, eur()));
        assert_eq!(serde_json::to_value(amount).unwrap(), money(5));
    }

    #[test]
    fn no_invalid_amount_can_be_constructed() {
        assert_eq!(Amount::new(0, eur()), Err(MoneyError::NotPositive));
        assert_eq!(Amount::new(-3, eur()), Err(MoneyError::NotPositive));
        assert_eq!(
            Amount::new(MAX_AMOUNT_MINOR + 1, eur()),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Money::non_negative(-1, eur()), Err(MoneyError::Negative));
    }
}
