//! The S3 client and the bridge to it: the SDK is async and kiroku's store callers are blocking
//! threads (capture, release), so each store owns a small runtime and waits for each call on a
//! channel; that works from any thread, inside a tokio runtime or not. Every SDK failure is
//! classified once here, as a [`CallError`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::S3Store;
use crate::config::S3Config;
use crate::store::StoreError;

/// Why one S3 call failed.
#[derive(Debug)]
pub(super) enum CallError {
    Auth(String),
    Unavailable(String),
    NotFound,
    Other(String),
}

impl CallError {
    pub(super) fn text(&self) -> String {
        match self {
            CallError::Auth(s) | CallError::Unavailable(s) | CallError::Other(s) => s.clone(),
            CallError::NotFound => "not found".into(),
        }
    }
}

/// Sorts an SDK failure by what the caller should do about it: wait (unavailable), stop and
/// tell the operator (auth), or give up on this object (other).
pub(super) fn classify<E>(e: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let text = DisplayErrorContext(&e).to_string();
    match (&e, status) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            CallError::Unavailable(text)
        }
        (_, Some(401 | 403)) => CallError::Auth(text),
        (_, Some(404)) => CallError::NotFound,
        (_, Some(s)) if s >= 500 => CallError::Unavailable(text),
        _ => CallError::Other(text),
    }
}

/// The store's own runtime: one worker, named after the region.
pub(super) fn runtime(region: &str) -> Result<tokio::runtime::Runtime, StoreError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("s3-{region}"))
        .enable_all()
        .build()
        .map_err(|e| StoreError::Unavailable(format!("region {region}: {e}")))
}

/// Builds the client (credentials from the config or the standard AWS chain). Does not reach
/// the bucket: a region may be down when kiroku starts.
pub(super) fn build(
    region: &str,
    cfg: &S3Config,
    rt: &tokio::runtime::Runtime,
) -> Result<aws_sdk_s3::Client, StoreError> {
    let c = cfg.clone();
    let handle = rt.handle().clone();
    // On a thread of its own: `block_on` must not run on a thread that drives a runtime.
    let build = move || {
        handle.block_on(async move {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(c.region.clone()));
            if let Some(p) = &c.profile {
                loader = loader.profile_name(p);
            }
            if let (Some(a), Some(s)) = (&c.access_key_id, &c.secret_access_key) {
                loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                    a.clone(),
                    s.clone(),
                    None,
                    None,
                    "kiroku-config",
                ));
            }
            let sdk = loader.load().await;
            let mut b = aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(c.path_style)
                // kiroku sends its own SHA-256 with every object; the SDK's default extra
                // checksums are not implemented by every S3-compatible store.
                .request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                )
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                );
            if let Some(ep) = &c.endpoint {
                b = b.endpoint_url(ep);
            }
            aws_sdk_s3::Client::from_conf(b.build())
        })
    };
    std::thread::spawn(build).join().map_err(|_| {
        StoreError::Unavailable(format!("region {region}: the S3 client could not be built"))
    })
}

impl S3Store {
    /// Runs one SDK call on the store's runtime, from any thread, with the upload timeout.
    pub(super) fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, CallError>> + Send + 'static,
    ) -> Result<T, CallError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let timeout = self.timeout;
        // Only `Drop` takes the runtime; a call after that finds the region unavailable.
        let Some(rt) = self.rt.as_ref() else {
            return Err(CallError::Unavailable("runtime stopped".into()));
        };
        rt.spawn(async move {
            let r = match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(CallError::Unavailable(format!(
                    "no answer within {} s",
                    timeout.as_secs()
                ))),
            };
            let _ = tx.send(r);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(CallError::Unavailable("runtime stopped".into())))
    }
}
