//! `lifeboat serve`: opens the store, starts the HTTP server, the queue workers and
//! the admin socket, and on SIGTERM or SIGINT shuts them down in order — requests in
//! flight finish, workers stop, the store is flushed.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::pod::Pod;
use crate::services::Services;
use crate::store::{OpenFailure, Store};
use crate::{admin, web, Error, Result};

/// Runs the pod until a shutdown signal.
pub async fn serve(config: Config) -> Result<()> {
    let dir = config.server.data_dir.clone();
    let store = match Store::open_with(
        &dir,
        config.server.store_cache_mib << 20,
        config.server.min_free_mib << 20,
    ) {
        Ok(store) => store,
        Err(OpenFailure::Busy(msg)) => {
            return Err(Error::Conflict(format!(
                "{msg}; stop it first, or use its podmin commands (they reach it through {})",
                admin::socket_path(&dir).display()
            )))
        }
        Err(OpenFailure::Other(e)) => return Err(e),
    };
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Conflict(format!("cannot listen on {listen}: {e}")))?;
    let pod = Pod::new(config, store)?;
    // The services, built once here and handed to the edges and workers below.
    let services = Arc::new(Services::new(&pod));
    let (stop, stopped) = watch::channel(false);

    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(pod.mailer.clone().run(stopped.clone()));
    workers.spawn(services.keys.clone().run(stopped.clone()));
    workers.spawn(services.outbox.clone().run(stopped.clone()));
    workers.spawn(crate::arrivals::restore::run(
        pod.clone(),
        services.restores.clone(),
        stopped.clone(),
    ));
    {
        let pod = pod.clone();
        let mut stopped = stopped.clone();
        workers.spawn(async move {
            // Closed accounts' avatars are looked at hourly (a pass reads every account).
            let mut next_avatar_purge = std::time::Instant::now();
            loop {
                if let Err(e) = crate::arrivals::received::close_due(&pod).await {
                    tracing::error!("closing moved accounts: {e}");
                }
                if std::time::Instant::now() >= next_avatar_purge {
                    next_avatar_purge += std::time::Duration::from_secs(3600);
                    if let Err(e) = crate::account::purge_closed_avatars(&pod, crate::account::now_unix()).await {
                        tracing::error!("deleting closed accounts' avatars: {e}");
                    }
                }
                let resends = crate::arrivals::received::RESENDS_PER_RUN;
                if let Err(e) = crate::arrivals::received::send_contact_resends(&pod, resends).await {
                    tracing::error!("re-sending contacts to moved identities: {e}");
                }
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                }
            }
        });
    }
    workers.spawn(crate::backup::home::run(
        pod.clone(),
        services.backups.clone(),
        stopped.clone(),
    ));
    workers.spawn(crate::people::queue::run(pod.clone(), stopped.clone()));
    {
        let (pod, services) = (pod.clone(), services.clone());
        let stopped = stopped.clone();
        workers.spawn(async move {
            if let Err(e) = admin::serve(pod, services, stopped).await {
                tracing::error!("admin socket stopped: {e}");
            }
        });
    }

    tracing::info!(
        "lifeboat {} serving {} on http://{listen} with data in {}{}",
        env!("CARGO_PKG_VERSION"),
        pod.config.public_url(),
        dir.display(),
        if pod.config.mail.smtp_host.is_none() {
            format!("; mail is written to {}", dir.join("outbox").display())
        } else {
            String::new()
        }
    );

    {
        let store = pod.store.clone();
        workers.spawn(crate::systemd::keep_watchdog(stopped.clone(), move || {
            let store = store.clone();
            async move { store.durable().await.is_ok() }
        }));
    }
    crate::systemd::notify(&format!(
        "READY=1\nSTATUS=serving {} on {listen}",
        pod.config.public_url()
    ));

    let stop = Arc::new(stop);
    tokio::spawn(shutdown_signal(stop.clone()));
    let mut on_signal = stopped.clone();
    warp::serve(web::filter(pod.clone(), services.clone()))
        .incoming(listener)
        .graceful(async move {
            let _ = on_signal.changed().await;
        })
        .run()
        .await;
    finish(pod, &stop, workers).await
}

/// Waits for SIGTERM or SIGINT, then flips `stop`.
async fn shutdown_signal(stop: Arc<watch::Sender<bool>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
    }
    let _ = stop.send(true);
}

async fn finish(pod: Arc<Pod>, stop: &watch::Sender<bool>, mut workers: tokio::task::JoinSet<()>) -> Result<()> {
    crate::systemd::notify("STOPPING=1\nSTATUS=finishing requests and flushing the store");
    let _ = stop.send(true);
    let drain = async { while workers.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(20), drain)
        .await
        .is_err()
    {
        tracing::warn!("workers did not stop within 20 s; flushing the store anyway");
    }
    pod.store.flush()?;
    tracing::info!("store flushed; goodbye");
    Ok(())
}
