//! Key pairs for new accounts, generated ahead of need: a 4096-bit RSA key takes
//! seconds to make, so a worker keeps a few ready in the store and sign-up takes one.

use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::federation::signature::{private_key_to_pem, public_key_to_pem};
use crate::pod::Signal;
use crate::store::Store;
use crate::{Error, Result};

/// How many key pairs the pool keeps ready.
pub const POOL_TARGET: usize = 3;

/// A ready key pair.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyPair {
    pub bits: usize,
    /// PKCS#1 PEM.
    pub private_pem: String,
    /// SPKI PEM.
    pub public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("bits", &self.bits)
            .field("private_pem", &"[redacted]")
            .finish()
    }
}

/// Makes a key pair on the calling thread (seconds for 4096 bits).
fn make(bits: usize) -> Result<KeyPair> {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .map_err(|e| Error::internal(format!("key generation: {e}")))?;
    Ok(KeyPair {
        bits,
        private_pem: private_key_to_pem(&key)?,
        public_pem: public_key_to_pem(&key.to_public_key()),
    })
}

/// Makes a key pair now. CPU-heavy: runs off the runtime.
pub async fn generate(bits: usize) -> Result<KeyPair> {
    tokio::task::spawn_blocking(move || make(bits))
        .await
        .map_err(|e| Error::internal(format!("key generation task: {e}")))?
}

/// Makes a key pair on a thread of its own at the lowest CPU priority, so filling the
/// pool in the background never slows down the requests being served.
async fn generate_in_background(bits: usize) -> Result<KeyPair> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("key-pool".into())
        .spawn(move || {
            // SAFETY: plain system calls on the calling thread; no memory is shared.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
            }
            let _ = sender.send(make(bits));
        })
        .map_err(|e| Error::internal(format!("key generation thread: {e}")))?;
    receiver
        .await
        .map_err(|_| Error::internal("key generation thread stopped"))?
}

/// The pool of ready key pairs (tree `key_pool`): the service that keeps it filled.
#[derive(Clone)]
pub struct KeyPool {
    store: Store,
    bits: usize,
    wake: Signal,
}

/// Takes a ready key pair of `bits` from the pool, or makes one now when the pool is
/// empty; rings `refill` (the pool's filler) either way.
pub async fn take(store: &Store, bits: usize, refill: &Signal) -> Result<KeyPair> {
    while let Some(pair) = store.pop_key()? {
        refill.ring();
        if pair.bits == bits {
            store.durable().await?;
            return Ok(pair);
        }
        tracing::debug!(bits = pair.bits, "dropping a pooled key of another size");
    }
    refill.ring();
    generate(bits).await
}

/// The storage the key pool needs (implemented in `store::accounts`).
pub trait KeyPoolStore {
    /// Takes the oldest pooled key pair out of the store.
    fn pop_key(&self) -> Result<Option<KeyPair>>;
    /// Adds a key pair to the pool.
    fn pool_key(&self, pair: &KeyPair) -> Result<()>;
    /// How many key pairs are pooled.
    fn pooled_keys(&self) -> usize;
}

impl KeyPool {
    /// The filler of the pool, woken by `wake` (the pod's `signals.keys`).
    pub fn new(store: Store, bits: usize, wake: Signal) -> KeyPool {
        KeyPool { store, bits, wake }
    }

    /// Keeps the pool filled until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if self.store.pooled_keys() < POOL_TARGET {
                let made = tokio::select! {
                    _ = shutdown.changed() => return,
                    made = generate_in_background(self.bits) => made,
                };
                match made.and_then(|pair| self.store.pool_key(&pair)) {
                    Ok(()) => continue,
                    Err(e) => tracing::error!("key pool: {e}"),
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.wake.rung() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            }
        }
    }
}
