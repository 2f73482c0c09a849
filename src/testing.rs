//! Test support, for the unit tests (`cfg(test)`), the integration tests and the
//! benchmarks (the `testing` feature, which the crate's own dev-dependency turns on):
//! cached test keys, an account builder, and a test pod — the whole stack (store,
//! infrastructure, services) on a temporary folder, the way `lifeboat serve` builds it
//! but without its workers. Not part of a release build.

use std::sync::{Arc, OnceLock};

use rsa::RsaPrivateKey;

use crate::account::{Account, AccountTx, ContactData, ProfileData};
use crate::config::Config;
use crate::federation::signature::{private_key_to_pem, public_key_to_pem};
use crate::pod::Pod;
use crate::services::Services;
use crate::store::Store;

/// The local user of the sharing and profile tests.
pub const ALICE: &str = "alice@lifeboat.example";
/// The remote person of those tests, their guid and their pod.
pub const BOB: &str = "bob@remote.example";
pub const BOB_GUID: &str = "0123456789abcdef0123456789abcdef";
pub const BOB_POD: &str = "https://remote.example";

/// A 2048-bit key made once per test run (the size tests use: see `accounts.key_bits`).
pub fn key_2048() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation"))
}

/// Another 2048-bit key, for "wrong key" cases and second accounts.
pub fn other_key_2048() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation"))
}

/// A local account as tests need it, built field by field from sensible defaults: the
/// username's own address (confirmed), [`key_2048`], one aspect "Friends", no contacts,
/// backups opted out.
pub struct AccountBuilder {
    account: Account,
}

/// Starts an [`AccountBuilder`] for `username`.
pub fn account(username: &str) -> AccountBuilder {
    let key = key_2048();
    let key_pair = crate::account::keys::KeyPair {
        bits: 2048,
        private_pem: private_key_to_pem(key).expect("PEM encoding"),
        public_pem: public_key_to_pem(&key.to_public_key()),
    };
    let mut account = Account::fresh(username, &format!("{username}@example.org"), &key_pair, 0);
    account.email_confirmed = true;
    account.aspects = vec!["Friends".into()];
    account.backups_opted_out = true;
    AccountBuilder { account }
}

impl AccountBuilder {
    pub fn guid(mut self, guid: &str) -> Self {
        self.account.guid = guid.into();
        self
    }

    pub fn email(mut self, email: &str) -> Self {
        self.account.email = email.into();
        self
    }

    /// The account's key pair.
    pub fn key(mut self, key: &RsaPrivateKey) -> Self {
        self.account.private_key_pem = private_key_to_pem(key).expect("PEM encoding");
        self.account.public_key_pem = public_key_to_pem(&key.to_public_key());
        self
    }

    pub fn password_hash(mut self, hash: &str) -> Self {
        self.account.password_hash = hash.into();
        self
    }

    pub fn aspects(mut self, aspects: &[&str]) -> Self {
        self.account.aspects = aspects.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn contacts(mut self, contacts: Vec<ContactData>) -> Self {
        self.account.contacts = contacts;
        self
    }

    pub fn profile(mut self, profile: ProfileData) -> Self {
        self.account.profile = profile;
        self
    }

    pub fn followed_tags(mut self, tags: &[&str]) -> Self {
        self.account.followed_tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn created(mut self, unix: u64) -> Self {
        self.account.created_unix = unix;
        self
    }

    /// Backups on, sealed with `key`.
    pub fn sealing_key(mut self, key: crate::sealed::SealingKey) -> Self {
        self.account.sealing_key = Some(key);
        self.account.backups_opted_out = false;
        self
    }

    /// Anything else, set on the account directly.
    pub fn with(mut self, change: impl FnOnce(&mut Account)) -> Self {
        change(&mut self.account);
        self
    }

    pub fn build(self) -> Account {
        self.account
    }
}

/// The configuration tests start from: the data folder `dir`, this pod at
/// `https://lifeboat.example` unless changed, 2048-bit keys and the cheapest Argon2
/// cost holders accept.
pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.to_path_buf();
    config.server.public_url = Some("https://lifeboat.example".into());
    config.accounts.key_bits = 2048;
    config.backups.kdf_memory_kib = 19456;
    config.backups.kdf_time_cost = 2;
    config
}

/// A whole pod on a temporary folder: its store, infrastructure and services, built as
/// `lifeboat serve` builds them (no workers run unless a test starts them).
pub struct TestPod {
    pub pod: Arc<Pod>,
    pub services: Services,
    _dir: tempfile::TempDir,
}

impl TestPod {
    /// A pod with [`config`]; `adjust` changes it before the pod is built.
    pub fn with(adjust: impl FnOnce(&mut Config)) -> TestPod {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut config = config(dir.path());
        adjust(&mut config);
        let store = Store::open(dir.path()).expect("the store opens");
        let pod = Pod::new(config, store).expect("the pod builds");
        let services = Services::new(&pod);
        TestPod {
            pod,
            services,
            _dir: dir,
        }
    }

    pub fn new() -> TestPod {
        TestPod::with(|_| {})
    }

    /// The data folder.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Writes `account` as a new account (its indexes with it), durably.
    pub fn add(&self, account: &Account) {
        self.pod
            .store
            .transaction(|tx| tx.put_account(None, account))
            .expect("the account is written");
        self.pod.store.flush().expect("the store flushes");
    }
}

impl Default for TestPod {
    fn default() -> Self {
        TestPod::new()
    }
}
