//! The witness: a service of the operator's auditor (or a transparency log's front) that
//! receives each checkpoint by POST and keeps it. kiroku never follows a redirect or a proxy
//! to it: the checkpoint goes to the address configured or nowhere.

use super::AnchorError;
use crate::config::WitnessConfig;

pub(super) struct WitnessSink {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl WitnessSink {
    pub(super) fn new(config: &WitnessConfig) -> Result<WitnessSink, AnchorError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(config.timeout_seconds))
            .build()
            .map_err(|e| AnchorError::Witness(e.to_string()))?;
        Ok(WitnessSink {
            client,
            url: config.url.clone(),
            token: config.token.clone(),
        })
    }

    /// POSTs the checkpoint line as JSON; any 2xx is taken as kept.
    pub(super) async fn publish(&self, line: &str) -> Result<(), String> {
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(line.trim_end().to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let answer = req.send().await.map_err(|e| e.to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("the witness answered {}", answer.status()))
        }
    }
}
