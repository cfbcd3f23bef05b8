//! The command line's privacy commands, one file per noun: notices, consents, recruiters,
//! receipts, the audit log, legal-exception releases and the candidate's rights. They mirror the API and go through
//! the same modules.

mod audit;
mod consent;
mod notice;
mod receipt;
mod recruiter;
mod release;
mod subject;

pub use audit::{AuditCmd, audit};
pub use consent::{ConsentCmd, consent};
pub use notice::{NoticeCmd, notice};
pub use receipt::{ReceiptCmd, receipt};
pub use recruiter::{RecruiterCmd, recruiter};
pub use release::{ReleaseArgs, release};
pub use subject::{SubjectCmd, subject};
