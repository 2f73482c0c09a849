//! The services a running pod keeps besides its infrastructure ([`Pod`]): the outbox,
//! the key pool, the backup holder, the restore flow and the backup worker's handle.
//! Built once around a pod ([`crate::server`] for `lifeboat serve`, `main` for a podmin
//! command run without a server), handed to the edges that use them (the web pages,
//! the admin socket), and run as workers by `server.rs`. Domain functions take the one
//! service they use, never this bundle.

use std::sync::Arc;
use std::time::Duration;

use crate::account::keys::KeyPool;
use crate::arrivals::restore::Restores;
use crate::backup::holder::{Holder, Policy};
use crate::backup::home::BackupSync;
use crate::delivery::{Outbox, OutboxPolicy};
use crate::pod::Pod;
use crate::retry::Backoff;
use crate::store::backups::SledSlots;

/// See the module doc.
pub struct Services {
    /// Messages to other pods, durable until delivered.
    pub outbox: Outbox,
    /// Key pairs for new accounts, made ahead of need.
    pub keys: KeyPool,
    /// The backups this pod holds for other pods' users.
    pub holder: Arc<Holder<SledSlots>>,
    /// Restores whose pass phrase opened a backup, waiting for the account form.
    pub restores: Restores,
    /// The handle of the worker that keeps this pod's accounts backed up.
    pub backups: BackupSync,
}

impl Services {
    pub fn new(pod: &Pod) -> Services {
        let config = &pod.config;
        let outbox = Outbox::new(
            pod.store.clone(),
            pod.http.clone(),
            OutboxPolicy {
                concurrency: config.federation.delivery_concurrency,
                per_pod_per_minute: config.federation.deliveries_per_pod_per_minute,
                allow_http: config.federation.allow_http,
                backoff: Backoff {
                    first: config.federation.delivery_retry_first.get(),
                    max: Duration::from_secs(6 * 3600),
                    give_up_after: config.federation.delivery_retry_for.get(),
                },
            },
            pod.signals.outbox.clone(),
        );
        let holder = Arc::new(Holder::new(
            SledSlots::new(pod.store.clone()),
            Policy::from_config(config),
            pod.mailer.clone(),
        ));
        Services {
            outbox,
            keys: KeyPool::new(pod.store.clone(), config.accounts.key_bits, pod.signals.keys.clone()),
            restores: Restores::new(holder.clone()),
            holder,
            backups: BackupSync::new(pod.signals.backups.clone()),
        }
    }
}
