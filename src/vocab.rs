//! The words kiroku's records are written in: consent scopes and actions, how a consent was
//! collected, what is released and on which legal basis, the outbox's kinds and states, where
//! an interview's capture stands, an analysis output's status and format. Each is an enum with exactly one text form, used alike by the
//! catalog's columns, the audit log, tags and the API, so past the catalog boundary no code
//! compares strings.
//!
//! They sit below the catalog (which stores them) and the consent ledger (which reasons with
//! them), so both can name them without importing each other.

use std::fmt;

use crate::ids::{CountryCode, IdError, RecruiterHandle};

/// An enum with one text form per variant: `as_str`, `parse` and `Display`, serialised as its
/// text.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        // Ordered as declared, so a list of words sorts the same way everywhere.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// The variant whose text is `s`.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        // In the OpenAPI document: a string, one of the texts.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    serde::de::Error::custom(format!("`{text}` is not one of {}", known.join(", ")))
                })
            }
        }
    };
}

text_enum! {
    /// A codec a recording holds, as recorded (kiroku never transcodes). Whether a recruiter's
    /// browser plays it is `recording::playback`'s question.
    pub enum Codec {
        Vp8 = "vp8",
        Vp9 = "vp9",
        Av1 = "av1",
        H264 = "h264",
        H265 = "h265",
        Opus = "opus",
        Aac = "aac",
        Mp3 = "mp3",
        Pcm = "pcm",
    }
}

text_enum! {
    /// What kind of media a segment holds; a tag stored with every segment.
    pub enum MediaKind {
        /// The recording's header data (segment 0).
        Header = "header",
        VideoAudio = "video-audio",
        Video = "video",
        Audio = "audio",
    }
}

text_enum! {
    /// What a consent event does to its scope.
    pub enum ConsentAction {
        Grant = "grant",
        Withdraw = "withdraw",
    }
}

text_enum! {
    /// How a consent event was collected.
    pub enum Method {
        WebForm = "web_form",
        Api = "api",
        Paper = "paper",
    }
}

text_enum! {
    /// Who a web session (a page's cookie) is for. A `candidate_link` is the single-use link
    /// a front-end asks for; opening it makes a `candidate` session.
    pub enum SessionKind {
        CandidateLink = "candidate_link",
        Candidate = "candidate",
        Recruiter = "recruiter",
        Operator = "operator",
    }
}

text_enum! {
    /// What a candidate asks the operator for from their privacy center.
    pub enum RightsRequestKind {
        Disclosure = "disclosure",
        Erasure = "erasure",
    }
}

text_enum! {
    /// The languages kiroku addresses a candidate in (the privacy texts exist in both).
    pub enum Language {
        Ja = "ja",
        En = "en",
    }
}

text_enum! {
    /// What is released to a recipient.
    pub enum Item {
        Recording = "recording",
        Analysis = "analysis",
    }
}

impl Item {
    /// The share scope this item needs for a recipient.
    pub fn scope(&self, to: &RecruiterHandle) -> Scope {
        match self {
            Item::Recording => Scope::ShareRecording(to.clone()),
            Item::Analysis => Scope::ShareAnalysis(to.clone()),
        }
    }
}

text_enum! {
    /// APPI Art. 27(1)'s exceptions to consent for third-party provision.
    pub enum LegalBasis {
        /// Art. 27(1)(i): based on laws and regulations.
        RequiredByLaw = "required_by_law",
        /// Art. 27(1)(ii): to protect a person's life, body or property, consent hard to obtain.
        LifeBodyProperty = "life_body_property",
        /// Art. 27(1)(iii): public health or the sound growth of children, consent hard to
        /// obtain.
        PublicHealthOrChildren = "public_health_or_children",
        /// Art. 27(1)(iv): cooperating with a national or local government body's legal duties.
        GovernmentCooperation = "government_cooperation",
    }
}

text_enum! {
    /// What a provision rested on.
    pub enum ProvisionBasis {
        /// A standing share consent (the record names its event).
        Consent = "consent",
        /// An operator's legal-exception release (the record names the basis and reference).
        LegalException = "legal_exception",
    }
}

text_enum! {
    /// What a push delivery tells its recipient.
    pub enum OutboxKind {
        RecordingReady = "recording.ready",
        AnalysisReady = "analysis.ready",
        ConsentWithdrawn = "consent.withdrawn",
        /// The candidate was erased: the recipient deletes what it received.
        CandidateErased = "candidate.erased",
    }
}

impl OutboxKind {
    /// A notice to a recipient (of a withdrawal, an erasure), not a release: nothing is
    /// decided for it, and no endpoint to send it to is a failure someone must act on.
    pub fn is_notice(&self) -> bool {
        matches!(
            self,
            OutboxKind::ConsentWithdrawn | OutboxKind::CandidateErased
        )
    }
}

text_enum! {
    /// Where a push delivery stands.
    pub enum OutboxState {
        /// Waiting for its next attempt.
        Pending = "pending",
        Delivered = "delivered",
        /// A withdrawal stopped it before it was sent.
        Cancelled = "cancelled",
        /// Every attempt failed.
        Failed = "failed",
    }
}

text_enum! {
    /// Where an interview's capture stands.
    pub enum InterviewState {
        /// Created; waiting for its one stream.
        Created = "created",
        /// A stream is being captured.
        Capturing = "capturing",
        /// The stream ended and every segment is stored.
        Finished = "finished",
        /// Capture stopped early (consent withdrawn, a limit reached, bad media, a lost client);
        /// the segments stored before stay recoverable.
        Stopped = "stopped",
    }
}

impl InterviewState {
    /// Capture is over, one way or another.
    pub fn is_ended(&self) -> bool {
        matches!(self, InterviewState::Finished | InterviewState::Stopped)
    }
}

text_enum! {
    /// What an analysis output is: a 16 kHz WAV rendition or an analyzer's JSON report (also
    /// the format recorded for a failure). Its text is the object key's extension.
    pub enum OutputFormat {
        Wav = "wav",
        Json = "json",
    }
}

text_enum! {
    /// Whether an analyzer produced its output.
    pub enum AnalysisStatus {
        Ok = "ok",
        Failed = "failed",
    }
}

/// Why a scope could not be built from its parts.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error(
        "unknown scope `{0}` (known: record, analyze, share.recording, share.analysis, transfer, improve)"
    )]
    Unknown(String),
    #[error("scope `{0}` needs --recipient (a recruiter handle)")]
    NeedsRecipient(&'static str),
    #[error("scope `transfer` needs --country (e.g. US)")]
    NeedsCountry,
    #[error("scope `{0}` takes no recipient or country")]
    Unexpected(&'static str),
    #[error(transparent)]
    Id(#[from] IdError),
}

/// What a candidate can consent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Record,
    Analyze,
    ShareRecording(RecruiterHandle),
    ShareAnalysis(RecruiterHandle),
    Transfer(CountryCode),
    Improve,
}

impl Scope {
    /// A scope that sends the candidate's data to someone else (a company, a country): given
    /// online only by the candidate in their own session, or by an operator from a signed
    /// paper form; never on a front-end's word alone.
    pub fn is_disclosure(&self) -> bool {
        matches!(
            self,
            Scope::ShareRecording(_) | Scope::ShareAnalysis(_) | Scope::Transfer(_)
        )
    }
}

impl Scope {
    /// Builds a scope from its name and the recipient or country it needs.
    pub fn parse(
        name: &str,
        recipient: Option<&str>,
        country: Option<&str>,
    ) -> Result<Scope, ScopeError> {
        let none = |s: &'static str, scope: Scope| {
            if recipient.is_some() || country.is_some() {
                Err(ScopeError::Unexpected(s))
            } else {
                Ok(scope)
            }
        };
        let recipient_of = |s: &'static str| -> Result<RecruiterHandle, ScopeError> {
            if country.is_some() {
                return Err(ScopeError::Unexpected(s));
            }
            Ok(RecruiterHandle::parse(
                recipient.ok_or(ScopeError::NeedsRecipient(s))?,
            )?)
        };
        match name {
            "record" => none("record", Scope::Record),
            "analyze" => none("analyze", Scope::Analyze),
            "improve" => none("improve", Scope::Improve),
            "share.recording" => Ok(Scope::ShareRecording(recipient_of("share.recording")?)),
            "share.analysis" => Ok(Scope::ShareAnalysis(recipient_of("share.analysis")?)),
            "transfer" => {
                if recipient.is_some() {
                    return Err(ScopeError::Unexpected("transfer"));
                }
                Ok(Scope::Transfer(CountryCode::parse(
                    country.ok_or(ScopeError::NeedsCountry)?,
                )?))
            }
            other => Err(ScopeError::Unknown(other.chars().take(40).collect())),
        }
    }

    /// Parses the one-string form [`Scope`]'s `Display` writes (`share.recording:acme`).
    pub fn parse_tag(tag: &str) -> Result<Scope, ScopeError> {
        let (name, arg) = match tag.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (tag, None),
        };
        match name {
            "transfer" => Scope::parse(name, None, arg),
            _ => Scope::parse(name, arg, None),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Scope::Record => "record",
            Scope::Analyze => "analyze",
            Scope::ShareRecording(_) => "share.recording",
            Scope::ShareAnalysis(_) => "share.analysis",
            Scope::Transfer(_) => "transfer",
            Scope::Improve => "improve",
        }
    }

    pub fn recipient(&self) -> Option<String> {
        match self {
            Scope::ShareRecording(r) | Scope::ShareAnalysis(r) => Some(r.to_string()),
            _ => None,
        }
    }

    pub fn country(&self) -> Option<String> {
        match self {
            Scope::Transfer(c) => Some(c.to_string()),
            _ => None,
        }
    }
}

/// `record`, `share.recording:acme`, `transfer:US`: the form used in tags and the outbox.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.recipient(), self.country()) {
            (Some(r), _) => write!(f, "{}:{r}", self.name()),
            (_, Some(c)) => write!(f, "{}:{c}", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

/// As the catalog's three columns: `{"scope": name, "recipient": …, "country": …}`, so a row
/// that flattens its scope serialises as it always has.
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Scope", 3)?;
        st.serialize_field("scope", self.name())?;
        st.serialize_field("recipient", &self.recipient())?;
        st.serialize_field("country", &self.country())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_scopes_need_a_recipient_and_transfer_needs_a_country() {
        assert!(matches!(
            Scope::parse("share.recording", None, None),
            Err(ScopeError::NeedsRecipient(_))
        ));
        assert!(matches!(
            Scope::parse("transfer", None, None),
            Err(ScopeError::NeedsCountry)
        ));
        assert!(matches!(
            Scope::parse("record", Some("acme"), None),
            Err(ScopeError::Unexpected(_))
        ));
        assert!(matches!(
            Scope::parse("recording", None, None),
            Err(ScopeError::Unknown(_))
        ));
        assert_eq!(
            Scope::parse("share.recording", Some("acme"), None)
                .unwrap()
                .to_string(),
            "share.recording:acme"
        );
    }

    #[test]
    fn every_scope_reads_back_from_its_tag_form() {
        for tag in [
            "record",
            "analyze",
            "improve",
            "share.recording:acme",
            "share.analysis:acme",
            "transfer:US",
        ] {
            assert_eq!(Scope::parse_tag(tag).unwrap().to_string(), tag);
        }
        assert!(Scope::parse_tag("share.recording").is_err());
        assert!(Scope::parse_tag("record:acme").is_err());
    }

    #[test]
    fn a_scope_serialises_as_its_three_columns() {
        let s = Scope::parse("transfer", None, Some("US")).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"scope": "transfer", "recipient": null, "country": "US"})
        );
    }

    #[test]
    fn text_enums_read_back_what_they_write_and_refuse_anything_else() {
        for k in OutboxKind::ALL {
            assert_eq!(OutboxKind::parse(k.as_str()), Some(*k));
        }
        for s in OutboxState::ALL {
            assert_eq!(OutboxState::parse(s.as_str()), Some(*s));
        }
        for s in InterviewState::ALL {
            assert_eq!(InterviewState::parse(s.as_str()), Some(*s));
        }
        for f in OutputFormat::ALL {
            assert_eq!(OutputFormat::parse(f.as_str()), Some(*f));
        }
        assert_eq!(OutputFormat::Wav.as_str(), "wav");
        assert_eq!(OutputFormat::Json.to_string(), "json");
        assert_eq!(OutputFormat::parse("JSON"), None);
        assert_eq!(
            serde_json::to_value(InterviewState::Stopped).unwrap(),
            serde_json::json!("stopped")
        );
        assert_eq!(OutboxState::parse("Pending"), None);
        assert_eq!(Item::parse(""), None);
        let err = serde_json::from_str::<LegalBasis>("\"because\"").unwrap_err();
        assert!(err.to_string().contains("required_by_law"), "{err}");
    }
}
