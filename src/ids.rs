//! Identifiers that are safe to put in paths, object keys and traces.
//!
//! Candidate and interview ids are random UUIDs: pseudonymous, so traces and object keys never
//! carry personal data, and parsed strictly, so an id can never name `..` or a slash. Recruiter
//! handles, region ids and country codes are short, lowercase or uppercase ASCII for the same
//! reason. Every constructor from untrusted text goes through [`IdError`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a piece of text is not a valid identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{kind} `{shown}` is not valid: {rule}")]
    Invalid {
        kind: &'static str,
        shown: String,
        rule: &'static str,
    },
}

fn invalid(kind: &'static str, text: &str, rule: &'static str) -> IdError {
    // Never echo a long or odd string back whole: it may be an attack or personal data.
    let shown: String = text.chars().take(40).filter(|c| !c.is_control()).collect();
    IdError::Invalid { kind, shown, rule }
}

macro_rules! uuid_id {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A pseudonymous ", $kind, " id (a random UUID).")]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new_random() -> Self {
                Self(uuid::Uuid::new_v4())
            }
            /// The 16 bytes bound into sealed objects.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// Rebuilds an id from the 16 bytes of a sealed header.
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(b))
            }
            /// Parses the canonical hyphenated lowercase form, and nothing else.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let rule = "expected a lowercase hyphenated UUID";
                if text.len() != 36 {
                    return Err(invalid($kind, text, rule));
                }
                let u = uuid::Uuid::try_parse(text).map_err(|_| invalid($kind, text, rule))?;
                if u.hyphenated().to_string() != text {
                    return Err(invalid($kind, text, rule));
                }
                Ok(Self(u))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.hyphenated())
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }
    };
}

uuid_id!(CandidateId, "candidate");
uuid_id!(InterviewId, "interview");

macro_rules! text_id {
    ($name:ident, $kind:literal, $check:expr, $rule:literal) => {
        #[doc = concat!("A ", $kind, ": ", $rule, ".")]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the text against the rule above.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(invalid($kind, text, $rule))
                }
            }
            /// The text itself.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

text_id!(
    RecruiterHandle,
    "recruiter handle",
    |s| is_slug(s, 63),
    "1 to 63 of a-z, 0-9 and '-', not starting with '-'"
);
text_id!(
    RegionId,
    "region id",
    |s| is_slug(s, 32),
    "1 to 32 of a-z, 0-9 and '-', not starting with '-'"
);
text_id!(
    CountryCode,
    "country code",
    |s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()),
    "two uppercase letters (ISO 3166-1 alpha-2, e.g. JP)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interview_id_refuses_path_characters() {
        for bad in [
            "../etc/passwd",
            "a/b",
            "",
            "00000000-0000-0000-0000-00000000000g",
            "%2e%2e",
        ] {
            assert!(InterviewId::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn interview_id_refuses_non_canonical_forms() {
        let id = InterviewId::new_random();
        assert_eq!(InterviewId::parse(&id.to_string()).unwrap(), id);
        assert!(InterviewId::parse(&id.to_string().to_uppercase()).is_err());
        assert!(InterviewId::parse(&id.to_string().replace('-', "")).is_err());
    }

    #[test]
    fn recruiter_handle_refuses_dots_slashes_and_capitals() {
        assert!(RecruiterHandle::parse("acme-jobs").is_ok());
        for bad in ["..", "a/b", "Acme", "-x", "", &"a".repeat(64)] {
            assert!(RecruiterHandle::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn country_code_is_two_uppercase_letters() {
        assert!(CountryCode::parse("JP").is_ok());
        assert!(CountryCode::parse("jp").is_err());
        assert!(CountryCode::parse("JPN").is_err());
    }
}
