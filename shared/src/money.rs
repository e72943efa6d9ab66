//! Money: ISO 4217 currencies and validated, strictly positive amounts.
//!
//! Money is `rust_decimal::Decimal` everywhere and travels as a decimal
//! *string* (`"1234.50"`), never as a float or a JSON number.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest amount one transfer may carry, in major units (one billion).
/// Bounds fat-finger mistakes and keeps balances far from the
/// `NUMERIC(24,4)` column limit, so a balance can never overflow.
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Most digits accepted before the decimal point: `AMOUNT_MAX` has 10.
const INTEGER_DIGITS_MAX: usize = 10;

/// An ISO 4217 currency that has a minor unit (no funds, metals or `XXX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    iso: iso_currency::Currency,
    minor_units: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("must be a three-letter upper-case ISO 4217 code such as \"EUR\"")]
    Malformed,
    #[error("\"{0}\" is not an ISO 4217 currency this bank supports")]
    Unknown(String),
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Malformed);
        }
        let iso = iso_currency::Currency::from_code(code)
            .ok_or_else(|| CurrencyError::Unknown(code.to_owned()))?;
        // Special codes (gold, testing, "no currency") and funds have no exponent
        // or are not money a customer holds.
        if iso.is_fund() || iso.is_special() {
            return Err(CurrencyError::Unknown(code.to_owned()));
        }
        let minor_units = iso
            .exponent()
            .ok_or_else(|| CurrencyError::Unknown(code.to_owned()))?;
        Ok(Self {
            iso,
            minor_units: u32::from(minor_units),
        })
    }

    pub fn code(&self) -> &'static str {
        self.iso.code()
    }

    /// Digits after the decimal point: EUR 2, JPY 0, KWD 3.
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }

    /// Formats `value` with exactly this currency's number of decimals.
    /// Values in the ledger always fit the currency's scale, so this never rounds
    /// anything that matters; it only trims the storage scale's trailing zeros.
    pub fn format(&self, value: Decimal) -> String {
        let mut v = value;
        v.rescale(self.minor_units);
        v.to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A strictly positive amount, at most [`AMOUNT_MAX`], with no more decimals
/// than its currency's minor unit. Once one exists it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("must be a decimal string such as \"12.34\"")]
    Malformed,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("{currency} allows at most {minor_units} decimal places")]
    TooManyDecimals {
        currency: &'static str,
        minor_units: u32,
    },
    #[error("must not exceed {AMOUNT_MAX}")]
    TooLarge,
}

impl Amount {
    /// Parses the wire form strictly: digits, optionally a dot and digits.
    /// No sign, exponent, separators or whitespace. A leading `-` is reported as
    /// "not positive" because that is what the sender meant.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        if let Some(rest) = text.strip_prefix('-')
            && is_plain_decimal(rest)
        {
            return Err(AmountError::NotPositive);
        }
        if !is_plain_decimal(text) {
            return Err(AmountError::Malformed);
        }
        let integer_digits = text.split('.').next().map_or(0, str::len);
        if integer_digits > INTEGER_DIGITS_MAX + 1 {
            // Cheap reject before parsing: catches "0000…" padding attacks too.
            return Err(AmountError::TooLarge);
        }
        let value = Decimal::from_str(text).map_err(|_| AmountError::Malformed)?;
        Self::from_decimal(value, currency)
    }

    /// Validates an already-parsed decimal (used by the processor to re-check
    /// what the gateway checked: defence in depth).
    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Self, AmountError> {
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if value > AMOUNT_MAX {
            return Err(AmountError::TooLarge);
        }
        if value.normalize().scale() > currency.minor_units() {
            return Err(AmountError::TooManyDecimals {
                currency: currency.code(),
                minor_units: currency.minor_units(),
            });
        }
        Ok(Self(value.normalize()))
    }

    pub fn value(&self) -> Decimal {
        self.0
    }
}

fn is_plain_decimal(s: &str) -> bool {
    let mut parts = s.splitn(2, '.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("eur"), Err(CurrencyError::Malformed));
        assert_eq!(Currency::parse("EURO"), Err(CurrencyError::Malformed));
        assert!(matches!(
            Currency::parse("ABC"),
            Err(CurrencyError::Unknown(_))
        ));
        assert!(matches!(
            Currency::parse("XAU"),
            Err(CurrencyError::Unknown(_))
        ));
        assert!(matches!(
            Currency::parse("XXX"),
            Err(CurrencyError::Unknown(_))
        ));
    }

    #[test]
    fn amounts_parse_strictly() {
        assert_eq!(
            Amount::parse("12.34", eur()).unwrap().value().to_string(),
            "12.34"
        );
        assert_eq!(
            Amount::parse("12.30", eur()).unwrap().value().to_string(),
            "12.3"
        );
        assert_eq!(Amount::parse("0", eur()), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("0.00", eur()), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse("-1", eur()), Err(AmountError::NotPositive));
        assert!(matches!(
            Amount::parse("1.001", eur()),
            Err(AmountError::TooManyDecimals { .. })
        ));
        // Trailing zeros beyond the minor unit do not change the value.
        assert!(Amount::parse("1.000", eur()).is_ok());
        for bad in [
            "abc", "", "1e3", "1_000", " 1", "1 ", "+1", "1.", ".5", "1,5", "NaN",
        ] {
            assert_eq!(
                Amount::parse(bad, eur()),
                Err(AmountError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            Amount::parse("1000000000.01", eur()),
            Err(AmountError::TooLarge)
        );
        assert!(Amount::parse("1000000000", eur()).is_ok());
        assert_eq!(
            Amount::parse(&"9".repeat(40), eur()),
            Err(AmountError::TooLarge)
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert!(matches!(
            Amount::parse("1.5", jpy),
            Err(AmountError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn formats_with_minor_units() {
        let v = Decimal::from_str("1234.5000").unwrap();
        assert_eq!(eur().format(v), "1234.50");
        assert_eq!(
            Currency::parse("JPY").unwrap().format(Decimal::from(7)),
            "7"
        );
        assert_eq!(eur().format(Decimal::from_str("-3.1").unwrap()), "-3.10");
    }
}
