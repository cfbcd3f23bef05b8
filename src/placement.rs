//! Placement: which region an interview's data lives in. The operator's policy maps a
//! candidate's home country to a region (`[placement]`, else `default_region`). A region in
//! another country than the candidate's home is used only while the candidate's `transfer`
//! consent for that country stands (APPI Art. 28). Without it, kiroku places the data in a
//! region in the home country, or else in one whose country the candidate consented to, or
//! refuses the interview.

use crate::app::{Kiroku, RegionRuntime};
use crate::catalog::CandidateRow;
use crate::consent::{ConsentError, Ledger, Scope};

/// Why no region could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "no region may hold this candidate's data: home country {home}, the policy's region `{preferred}` is in {country}, and there is no standing `transfer` consent for it nor a region in {home}"
    )]
    NoAllowedRegion {
        home: String,
        preferred: String,
        country: String,
    },
    #[error(transparent)]
    Consent(#[from] ConsentError),
}

/// The chosen region and why it was allowed (for the audit log).
pub struct Placed<'a> {
    pub region: &'a RegionRuntime,
    /// `home_country`, or `transfer_consent:<consent id>`.
    pub why: String,
}

pub fn place<'a>(app: &'a Kiroku, who: &CandidateRow) -> Result<Placed<'a>, PlacementError> {
    let home = &who.home_country;
    let ledger = Ledger::new(app);
    let allowed = |r: &RegionRuntime| -> Result<Option<String>, PlacementError> {
        if r.region.country == *home {
            return Ok(Some("home_country".into()));
        }
        Ok(ledger
            .standing_grant(&who.id, &Scope::Transfer(r.region.country.clone()))?
            .map(|g| format!("transfer_consent:{}", g.id)))
    };
    let preferred = app.preferred_region(home);
    if let Some(why) = allowed(preferred)? {
        return Ok(Placed {
            region: preferred,
            why,
        });
    }
    // The policy's region needs a transfer consent the candidate has not given: a region at
    // home first, then any whose country the candidate did consent to.
    let mut regions: Vec<&RegionRuntime> = app.regions.values().collect();
    regions.sort_by_key(|r| r.region.country != *home);
    for r in regions {
        if let Some(why) = allowed(r)? {
            return Ok(Placed { region: r, why });
        }
    }
    Err(PlacementError::NoAllowedRegion {
        home: home.to_string(),
        preferred: preferred.region.id.to_string(),
        country: preferred.region.country.to_string(),
    })
}
