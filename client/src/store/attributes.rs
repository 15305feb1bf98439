//! Client attributes: what a client declares about itself (region, tenant, server
//! id…) so that rollout rules can route it.
//!
//! Attributes come from the configuration (`init --attr`, `config --attr`) and from
//! the command line of one run (`check --attr`, `update --attr`), the latter winning.
//! They are only ever read by the local decision: no request the client makes
//! carries them, so declaring an attribute tells the publisher nothing.

use wavecast_schema::Attributes;

use crate::store::error::{Error, Result};

/// Whether `key` is a valid attribute name: one or more ASCII letters, digits, `.`,
/// `_` or `-`, the names a rule condition can test.
pub fn is_valid_attribute_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
}

/// Parses one `KEY=VALUE` argument. The value is everything after the first `=`,
/// kept as written (it may be empty).
///
/// # Errors
///
/// [`Error::InvalidAttribute`] without a `=`, [`Error::InvalidAttributeKey`] when
/// the key is not a valid name.
///
/// ```
/// use wavecast_client::parse_attribute;
///
/// let (key, value) = parse_attribute("region=eu-west").unwrap();
/// assert_eq!((key.as_str(), value.as_str()), ("region", "eu-west"));
/// assert!(parse_attribute("region").is_err());
/// assert!(parse_attribute("my region=eu").is_err());
/// ```
pub fn parse_attribute(argument: &str) -> Result<(String, String)> {
    let (key, value) = argument
        .split_once('=')
        .ok_or_else(|| Error::InvalidAttribute {
            argument: argument.to_owned(),
        })?;
    check_attribute_key(key)?;
    Ok((key.to_owned(), value.to_owned()))
}

/// Checks one attribute name.
///
/// # Errors
///
/// [`Error::InvalidAttributeKey`] when `key` is not a valid name.
pub fn check_attribute_key(key: &str) -> Result<()> {
    if is_valid_attribute_key(key) {
        Ok(())
    } else {
        Err(Error::InvalidAttributeKey {
            key: key.to_owned(),
        })
    }
}

/// Checks every name of `attributes`.
pub(crate) fn check_attribute_keys(attributes: &Attributes) -> Result<()> {
    attributes
        .keys()
        .try_for_each(|key| check_attribute_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_parse() {
        for (argument, key, value) in [
            ("region=eu", "region", "eu"),
            ("server_id=a=b", "server_id", "a=b"),
            ("tenant.name=", "tenant.name", ""),
            ("A-1_b.c=x y", "A-1_b.c", "x y"),
        ] {
            assert_eq!(
                parse_attribute(argument).unwrap(),
                (key.to_owned(), value.to_owned()),
                "{argument}"
            );
        }
        for bad in ["region", "=eu", "re gion=eu", "région=eu", "a/b=c", ""] {
            assert!(parse_attribute(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(matches!(
            parse_attribute("region"),
            Err(Error::InvalidAttribute { .. })
        ));
        assert!(matches!(
            parse_attribute("a b=c"),
            Err(Error::InvalidAttributeKey { .. })
        ));
    }
}
