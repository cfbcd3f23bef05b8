//! Every typed value's SQL form, in one place: the vocabulary's words and object keys are
//! written as their text and read back through their parser, so a row read from the catalog
//! is typed or is an error naming the column's bad value, never a string passed on.

use crate::sqldb::{FromSql, FromSqlError, FromSqlResult, ToSql, Value};

use crate::ids::{CandidateId, CountryCode, InterviewId, RecruiterHandle, RegionId};
use crate::store::ObjectKey;
use crate::vocab::{
    AnalysisStatus, ConsentAction, InterviewState, Item, Language, LegalBasis, MediaKind, Method,
    OutboxKind, OutboxState, OutputFormat, ProvisionBasis, RightsRequestKind, Scope, SessionKind,
};

fn bad(what: &str, value: &str) -> FromSqlError {
    FromSqlError::Other(
        format!(
            "not a {what}: `{}`",
            value.chars().take(80).collect::<String>()
        )
        .into(),
    )
}

/// Text enums: stored as `as_str`, read with `parse`.
macro_rules! text_column {
    ($($ty:ty => $what:literal),+ $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> Value {
        Value::Text(self.as_str().to_string())
    }
        }
        impl FromSql for $ty {
            fn column_result(v: &Value) -> FromSqlResult<Self> {
                let text = v.as_str()?;
                <$ty>::parse(text).ok_or_else(|| bad($what, text))
            }
        }
    )+};
}

text_column! {
    ConsentAction => "consent action",
    Method => "consent method",
    Item => "release item",
    LegalBasis => "legal basis",
    ProvisionBasis => "provision basis",
    OutboxKind => "delivery kind",
    OutboxState => "delivery state",
    AnalysisStatus => "analysis status",
    OutputFormat => "kind of analysis output",
    MediaKind => "media kind",
    InterviewState => "capture state",
    Language => "language",
    SessionKind => "web session kind",
    RightsRequestKind => "rights request kind",
}

/// Identifiers: read with their own parser, so a row never carries one that could escape a
/// folder. (They are written as `to_string()`.)
macro_rules! id_column {
    ($($ty:ty => $what:literal),+ $(,)?) => {$(
        impl FromSql for $ty {
            fn column_result(v: &Value) -> FromSqlResult<Self> {
                let text = v.as_str()?;
                <$ty>::parse(text).map_err(|_| bad($what, text))
            }
        }
    )+};
}

id_column! {
    CandidateId => "candidate id",
    InterviewId => "interview id",
    RecruiterHandle => "recruiter handle",
    RegionId => "region id",
    CountryCode => "country code",
}

/// A scope in one column (the outbox's): its tag form, `share.recording:acme`.
impl ToSql for Scope {
    fn to_sql(&self) -> Value {
        Value::Text(self.to_string().to_string())
    }
}

impl FromSql for Scope {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        let text = v.as_str()?;
        Scope::parse_tag(text).map_err(|_| bad("consent scope", text))
    }
}

impl ToSql for ObjectKey {
    fn to_sql(&self) -> Value {
        Value::Text(self.as_str().to_string())
    }
}

impl FromSql for ObjectKey {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        let text = v.as_str()?;
        ObjectKey::parse(text).map_err(|_| bad("object key", text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: ToSql + FromSql>(v: &T) -> T {
        let db = crate::sqldb::Connection::open_in_memory().unwrap();
        db.query_row("SELECT ?1", [v], |r| r.get(0)).unwrap()
    }

    #[test]
    fn every_word_reads_back_as_itself() {
        for k in OutboxKind::ALL {
            assert_eq!(round_trip(k), *k);
        }
        for s in OutboxState::ALL {
            assert_eq!(round_trip(s), *s);
        }
        for s in InterviewState::ALL {
            assert_eq!(round_trip(s), *s);
        }
        for f in OutputFormat::ALL {
            assert_eq!(round_trip(f), *f);
        }
        let scope = Scope::parse_tag("share.analysis:acme").unwrap();
        assert_eq!(round_trip(&scope), scope);
    }

    #[test]
    fn an_unknown_word_in_a_column_is_an_error_naming_it() {
        let db = crate::sqldb::Connection::open_in_memory().unwrap();
        let err = db
            .query_row("SELECT 'shipped'", crate::sqldb::params![], |r| {
                r.get::<_, OutboxState>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("`shipped`"), "{err}");
        let err = db
            .query_row("SELECT 'mp3'", crate::sqldb::params![], |r| {
                r.get::<_, OutputFormat>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("`mp3`"), "{err}");
    }

    /// The schema's CHECK constraints still spell the words this build writes (migrations are
    /// history and keep their own copy of the spellings).
    #[test]
    fn the_schema_accepts_every_word_written_to_a_checked_column() {
        let sql = super::super::migrations::STEPS.concat();
        let words = OutboxState::ALL
            .iter()
            .map(|w| w.as_str())
            .chain(OutputFormat::ALL.iter().map(|w| w.as_str()))
            .chain(AnalysisStatus::ALL.iter().map(|w| w.as_str()))
            .chain(ConsentAction::ALL.iter().map(|w| w.as_str()))
            .chain(ProvisionBasis::ALL.iter().map(|w| w.as_str()));
        for w in words {
            assert!(
                sql.contains(&format!("'{w}'")),
                "`{w}` is not in the schema"
            );
        }
    }
}
