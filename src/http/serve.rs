//! `kiroku serve`: the listener and the background loops, and their orderly stop on SIGTERM or
//! ctrl-c. A stop refuses new connections and streams, ends each open stream where it stands
//! (as `finish` does: the segment in progress becomes the last, the manifest is sealed as
//! complete), lets requests in flight finish, then stops the delivery loop after its attempt
//! in flight and the spool uploaders after their upload in flight. Each wait is bounded; what
//! a bound cuts short is what a crash would leave, and a restart recovers it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::timeout;

use super::{AppState, routes};
use crate::app::Kiroku;

/// How long open streams get to end and seal their manifests.
const STREAMS_GRACE: Duration = Duration::from_secs(30);
/// How long other requests in flight (a download, say) get to finish.
const REQUESTS_GRACE: Duration = Duration::from_secs(10);
/// How long an upload in flight gets to finish.
const UPLOADS_GRACE: Duration = Duration::from_secs(30);
/// What is still on the blocking pool at the very end (one piece of a download) gets this.
const BLOCKING_GRACE: Duration = Duration::from_secs(5);

/// Runs the API until SIGTERM, ctrl-c or [`Kiroku::shutdown`], then stops in order.
pub fn serve_blocking(app: Arc<Kiroku>) -> Result<(), std::io::Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(serve(app));
    rt.shutdown_timeout(BLOCKING_GRACE);
    served
}

async fn serve(app: Arc<Kiroku>) -> Result<(), std::io::Error> {
    let listener = tokio::net::TcpListener::bind(app.config.listen).await?;
    // Holding the address, this process is the node of that name (see `Kiroku::node`).
    app.serve_as_address();
    let addr = listener.local_addr()?;
    {
        let app = app.clone();
        tokio::task::spawn_blocking(move || crate::capture::recover_interrupted(&app))
            .await
            .map_err(std::io::Error::other)?;
    }
    app.start_uploaders();
    {
        let app = app.clone();
        let purged =
            tokio::task::spawn_blocking(move || crate::release::purge_expired_provisions(&app))
                .await
                .map_err(std::io::Error::other)?;
        if let Err(e) = purged {
            tracing::error!(error = %e, "provision records could not be purged");
        }
    }
    let mut deliveries = tokio::spawn(crate::delivery::run(app.clone()));
    tokio::spawn(sweep_hourly(app.clone()));
    tokio::spawn(keep_leases(app.clone()));
    tracing::info!(%addr, "kiroku is listening");
    println!("kiroku listening on http://{addr}");
    for (role, secret) in [
        ("service", &app.service_token),
        ("operator", &app.operator_token),
    ] {
        match &secret.file {
            Some(f) => println!("{role} token: in {}", f.display()),
            None => println!(
                "{role} token: from the config or KIROKU_{}_TOKEN",
                role.to_uppercase()
            ),
        }
    }
    let state = AppState::new(app.clone());
    tokio::spawn(finish_when_asked(state.clone()));
    let open_streams = state.open_streams.clone();
    let stopped = {
        let app = app.clone();
        async move { app.stopped().await }
    };
    let mut server = tokio::spawn(super::listener::run(
        listener,
        routes(state),
        app.config.server.clone(),
        stopped,
    ));
    let mut served = Ok(());
    tokio::select! {
        _ = stop_signal() => {}
        _ = app.stopped() => {}
        ended = &mut server => served = ended.map_err(std::io::Error::other).and_then(|r| r),
    }
    app.shutdown();
    tracing::info!("kiroku is stopping: open streams end at their next boundary");

    let mut open = open_streams.subscribe();
    if timeout(STREAMS_GRACE, open.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        tracing::warn!(
            open = *open.borrow(),
            "streams still open at the deadline; a restart recovers them"
        );
    }
    if !server.is_finished() {
        match timeout(REQUESTS_GRACE, &mut server).await {
            Ok(ended) => served = ended.map_err(std::io::Error::other).and_then(|r| r),
            Err(_) => {
                tracing::warn!("requests still in flight at the deadline are cut");
                server.abort();
            }
        }
    }
    // A delivery attempt in flight completes (its own timeout bounds it) or stays pending.
    let attempt_bound = Duration::from_secs(app.config.webhooks.timeout_seconds + 5);
    if timeout(attempt_bound, &mut deliveries).await.is_err() {
        tracing::warn!("the delivery in flight is left pending");
        deliveries.abort();
    }
    {
        let app = app.clone();
        let stopped = tokio::task::spawn_blocking(move || app.stop_uploaders(UPLOADS_GRACE)).await;
        if !matches!(stopped, Ok(true)) {
            tracing::warn!("an upload was still in flight; its object stays in the spool");
        }
    }
    let app2 = app.clone();
    match tokio::task::spawn_blocking(move || app2.audit.checkpoint_now()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "final audit checkpoint could not be written"),
        Err(e) => tracing::error!(error = %e, "final audit checkpoint could not be written"),
    }
    tracing::info!("kiroku stopped");
    served
}

/// Resolves on SIGTERM or ctrl-c (SIGINT). A signal that cannot be watched is logged and
/// simply never comes.
async fn stop_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "ctrl-c cannot be watched");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM cannot be watched");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// Deletes what is past its retention, and rotates key epochs that are due, at start and
/// every hour after, until `serve` stops.
/// Ends the streams of this node that another node was asked to finish (`finish` arrives at
/// any node; the one holding the stream looks every second).
async fn finish_when_asked(state: AppState) {
    loop {
        tokio::select! {
            _ = state.app.stopped() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let ids: Vec<_> = state.live().keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let app = state.app.clone();
        match tokio::task::spawn_blocking(move || app.catalog.finish_requested(&ids)).await {
            Ok(Ok(asked)) => {
                for id in asked {
                    if let Some(feeder) = state.live().get(&id).cloned() {
                        tracing::info!(interview = %id, "finish asked on another node");
                        feeder.end();
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "finish requests could not be read"),
            Err(_) => {}
        }
    }
}

/// Renews this node's capture leases every third of a lease, and stops the captures of any
/// node whose lease lapsed (it died), keeping every acknowledged segment.
async fn keep_leases(app: Arc<Kiroku>) {
    let every =
        std::time::Duration::from_secs((app.config.server.capture_lease_seconds / 3).max(1));
    loop {
        tokio::select! {
            _ = app.stopped() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let a = app.clone();
        let renewed = tokio::task::spawn_blocking(move || {
            let renewed = a.renew_leases();
            crate::capture::recover_interrupted(&a);
            renewed
        })
        .await;
        if let Ok(Err(e)) = renewed {
            tracing::error!(error = %e, "capture leases could not be renewed");
        }
    }
}

async fn sweep_hourly(app: Arc<Kiroku>) {
    loop {
        // One node an hour does the sweeps: the claim is kept, not given up, so the others
        // skip them until it lapses.
        let a = app.clone();
        let mine = tokio::task::spawn_blocking(move || {
            let now = crate::util::now_unix();
            a.catalog.claim("sweeps:hourly", a.node(), now, now + 3500)
        })
        .await;
        if !matches!(mine, Ok(Ok(true))) {
            tokio::select! {
                _ = app.stopped() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            }
            continue;
        }
        let a = app.clone();
        let swept = tokio::task::spawn_blocking(move || {
            crate::subject::sweep(&a, crate::util::now_unix(), false)
        })
        .await;
        match swept {
            Ok(Ok(r)) if !r.expired.is_empty() => {
                tracing::info!(
                    items = r.expired.len(),
                    objects = r.objects_deleted,
                    "retention sweep"
                )
            }
            Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
            _ => {}
        }
        let a = app.clone();
        let swept =
            tokio::task::spawn_blocking(move || a.catalog.sweep_sessions(crate::util::now_unix()))
                .await;
        if let Ok(Err(e)) = swept {
            tracing::error!(error = %e, "expired sessions could not be swept");
        }
        let a = app.clone();
        match tokio::task::spawn_blocking(move || crate::subject::keys::rotate_due(&a)).await {
            Ok(Ok(done)) if !done.is_empty() => {
                tracing::info!(regions = done.len(), "key epochs rotated")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "key epoch rotation failed"),
            _ => {}
        }
        tokio::select! {
            _ = app.stopped() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}
