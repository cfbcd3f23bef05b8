//! Placement: which region an interview's data lives in. The operator's policy maps a
//! candidate's home country to a region (`[placement]`, else `default_region`). A region in
//! another country than the candidate's home is used only while the candidate's `transfer`
//! consent for that country stands (APPI Art. 28). Without it, kiroku places the data in a
//! region in the home country, or else in one whose country the candidate consented to, or
//! refuses the interview.
//!
//! A pure function of the policy, the regions and the candidate's consent state: it touches no
//! store or catalog, so its rules are unit-tested here.

use crate::consent::{ConsentState, Scope};
use crate::ids::{CountryCode, RegionId};

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
    #[error("the placement policy names region `{0}`, which is not configured")]
    UnknownRegion(String),
}

/// What placement weighs for one candidate.
pub struct Policy<'a> {
    /// The region the operator's policy maps the home country to.
    pub preferred: &'a RegionId,
    /// Every configured region and the country it stores data in.
    pub regions: Vec<(&'a RegionId, &'a CountryCode)>,
}

/// The chosen region and why it was allowed (for the audit log).
#[derive(Debug, PartialEq, Eq)]
pub struct Placed {
    pub region: RegionId,
    /// `home_country`, or `transfer_consent:<consent id>`.
    pub why: String,
}

/// Chooses the region for a candidate living in `home` whose consents are `consents`.
pub fn place(
    policy: &Policy<'_>,
    home: &CountryCode,
    consents: &ConsentState,
) -> Result<Placed, PlacementError> {
    let allowed = |country: &CountryCode| -> Option<String> {
        if country == home {
            return Some("home_country".into());
        }
        consents
            .grant_for(&Scope::Transfer(country.clone()))
            .map(|g| format!("transfer_consent:{}", g.id))
    };
    let placed = |id: &RegionId, why| Placed {
        region: id.clone(),
        why,
    };
    let (_, preferred_country) = policy
        .regions
        .iter()
        .find(|(id, _)| *id == policy.preferred)
        .ok_or_else(|| PlacementError::UnknownRegion(policy.preferred.to_string()))?;
    if let Some(why) = allowed(preferred_country) {
        return Ok(placed(policy.preferred, why));
    }
    // The policy's region needs a transfer consent the candidate has not given: a region at
    // home first, then any whose country the candidate did consent to.
    let mut regions = policy.regions.clone();
    regions.sort_by_key(|(_, country)| *country != home);
    for (id, country) in regions {
        if let Some(why) = allowed(country) {
            return Ok(placed(id, why));
        }
    }
    Err(PlacementError::NoAllowedRegion {
        home: home.to_string(),
        preferred: policy.preferred.to_string(),
        country: preferred_country.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ConsentEventRow;
    use crate::ids::CandidateId;

    fn country(c: &str) -> CountryCode {
        CountryCode::parse(c).unwrap()
    }

    fn region(r: &str) -> RegionId {
        RegionId::parse(r).unwrap()
    }

    fn transfer_granted(to: &str) -> ConsentState {
        ConsentState::replay(vec![ConsentEventRow::bare(
            "ce_transfer",
            CandidateId::from_bytes([1; 16]),
            crate::vocab::ConsentAction::Grant,
            Scope::Transfer(country(to)),
        )])
    }

    /// Regions `jp` (JP) and `us` (US).
    fn two_regions<'a>(ids: &'a [RegionId; 2], countries: &'a [CountryCode; 2]) -> Policy<'a> {
        Policy {
            preferred: &ids[1],
            regions: vec![(&ids[0], &countries[0]), (&ids[1], &countries[1])],
        }
    }

    #[test]
    fn the_policys_region_at_home_is_chosen_without_any_consent() {
        let ids = [region("jp"), region("us")];
        let countries = [country("JP"), country("US")];
        let mut policy = two_regions(&ids, &countries);
        policy.preferred = &ids[0];
        let placed = place(&policy, &country("JP"), &ConsentState::default()).unwrap();
        assert_eq!(placed.region, region("jp"));
        assert_eq!(placed.why, "home_country");
    }

    #[test]
    fn a_foreign_policy_region_is_used_under_a_standing_transfer_consent_naming_it() {
        let ids = [region("jp"), region("us")];
        let countries = [country("JP"), country("US")];
        let placed = place(
            &two_regions(&ids, &countries),
            &country("JP"),
            &transfer_granted("US"),
        )
        .unwrap();
        assert_eq!(placed.region, region("us"));
        assert_eq!(placed.why, "transfer_consent:ce_transfer");
    }

    #[test]
    fn without_transfer_consent_the_data_stays_in_a_home_region() {
        let ids = [region("jp"), region("us")];
        let countries = [country("JP"), country("US")];
        let placed = place(
            &two_regions(&ids, &countries),
            &country("JP"),
            &ConsentState::default(),
        )
        .unwrap();
        assert_eq!(placed.region, region("jp"));
        assert_eq!(placed.why, "home_country");
    }

    #[test]
    fn a_transfer_consent_for_another_country_does_not_open_the_policys_region() {
        let ids = [region("de"), region("us")];
        let countries = [country("DE"), country("US")];
        let placed = place(
            &two_regions(&ids, &countries),
            &country("JP"),
            &transfer_granted("DE"),
        )
        .unwrap();
        assert_eq!(placed.region, region("de"), "the consented country, not US");
        assert_eq!(placed.why, "transfer_consent:ce_transfer");
    }

    #[test]
    fn no_home_region_and_no_transfer_consent_refuses_naming_the_policys_region() {
        let ids = [region("de"), region("us")];
        let countries = [country("DE"), country("US")];
        let err = place(
            &two_regions(&ids, &countries),
            &country("JP"),
            &ConsentState::default(),
        )
        .unwrap_err();
        match err {
            PlacementError::NoAllowedRegion {
                home,
                preferred,
                country,
            } => {
                assert_eq!((home.as_str(), preferred.as_str()), ("JP", "us"));
                assert_eq!(country, "US");
            }
            other => panic!("expected NoAllowedRegion, got {other}"),
        }
    }

    #[test]
    fn a_policy_naming_an_unconfigured_region_is_an_error_not_a_panic() {
        let ids = [region("jp"), region("us")];
        let countries = [country("JP"), country("US")];
        let gone = region("kr");
        let mut policy = two_regions(&ids, &countries);
        policy.preferred = &gone;
        assert!(matches!(
            place(&policy, &country("JP"), &ConsentState::default()),
            Err(PlacementError::UnknownRegion(r)) if r == "kr"
        ));
    }
}
