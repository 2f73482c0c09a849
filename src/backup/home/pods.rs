//! The directory of backup pods a home pod knows (docs/holder-api.md, "Choosing a
//! backup pod"): which pods there are, which of them are *vetted*, and which are
//! *available*.
//!
//! - Known pods: `federation.seed_pods` and `backups.approved_pods` from the
//!   configuration (the **vetted** ones), and pods seen through signature-verified
//!   federation: every local account's `known_pods` (which admits only verified hosts:
//!   docs/formats.md, "known_pods") and whatever the federation code records with
//!   [`note_seen_in`].
//! - Availability is read from each pod's NodeInfo (`metadata.acceptsBackups`,
//!   `metadata.backupMaxBytes`), refreshed every `backups.pod_check_interval` and cached
//!   in the tree `backup_pods` (origin -> [`PodInfo`]), so it survives restarts. A pod
//!   is available when its last read succeeded and said `acceptsBackups: true`, it has
//!   not refused a push since (403), and it is not this pod.
//! - Vetting is decided from the configuration each time it is asked, never stored: a
//!   pod the podmin removes from `approved_pods` stops being vetted at the next start.
//! - [`choose_automatic`] picks at random among the available pods of the best tier
//!   (vetted first; then, with `backups.choose_from = "known"`, the default, any
//!   available pod known through verified federation), so that whoever runs many pods
//!   cannot attract most backups; a user's own choice may take any available pod (the
//!   settings mark the others as not vetted).
//!
//! Not here: what happens to accounts when a pod's availability changes (that is
//! [`super::sync`], which runs the checks as part of its worker).

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ChooseFrom, Config};
use crate::http_client::{origin_of, HttpClient};
use crate::store::{Store, Tx};
use crate::{Error, Result};

/// What a unit of work returns.
pub use crate::store::TxResult;

/// The storage the pod directory needs (implemented in `store::backup_sync`): one
/// [`PodInfo`] per origin.
pub trait PodDirectory {
    fn pod(&self, origin: &str) -> Result<Option<PodInfo>>;
    /// Every stored pod, by origin.
    fn pods(&self) -> Result<Vec<(String, PodInfo)>>;
}

/// The same inside a unit of work, and the write.
pub trait PodDirectoryTx {
    fn pod(&self, origin: &str) -> TxResult<Option<PodInfo>>;
    fn put_pod(&self, origin: &str, info: &PodInfo) -> TxResult<()>;
}

/// What this pod knows of one backup pod (tree `backup_pods`, keyed by origin).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodInfo {
    /// NodeInfo's `metadata.acceptsBackups` at the last successful read.
    pub accepts_backups: bool,
    /// NodeInfo's `metadata.backupMaxBytes` at the last successful read, when given.
    pub max_bytes: Option<u64>,
    /// Learned from signature-verified federation (not only from the configuration).
    pub seen_in_federation: bool,
    /// The last read of its NodeInfo, successful or not (Unix seconds).
    pub last_checked_unix: Option<u64>,
    /// The last successful read.
    pub last_ok_unix: Option<u64>,
    /// Why the last read failed; `None` when it succeeded.
    pub last_error: Option<String>,
    /// When it last answered a backup push with 403 (it no longer takes backups);
    /// cleared by the next successful NodeInfo read.
    pub refused_unix: Option<u64>,
    /// When its NodeInfo is read next.
    pub next_check_unix: u64,
}

impl PodInfo {
    /// Whether the pod said it takes backups, at a read that succeeded and has not
    /// been contradicted by a 403 since.
    pub fn accepting(&self) -> bool {
        self.last_error.is_none() && self.last_ok_unix.is_some() && self.accepts_backups && self.refused_unix.is_none()
    }

    /// Whether the pod said plainly that it no longer takes backups: its last
    /// successful NodeInfo read said so, or it answered a push with 403. (A pod that
    /// cannot be reached has said nothing: its accounts are retried, and moved only
    /// after `backups.move_after_failing`.)
    pub fn refuses(&self) -> bool {
        self.refused_unix.is_some() || (self.last_ok_unix.is_some() && !self.accepts_backups)
    }
}

/// One pod as the directory shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// `scheme://host[:port]`.
    pub origin: String,
    /// Listed in `seed_pods` or `approved_pods`.
    pub vetted: bool,
    /// Takes backups now, and is not this pod.
    pub available: bool,
    /// This pod itself (never a destination).
    pub is_self: bool,
    pub info: PodInfo,
}

/// The origins of the vetted pods: `federation.seed_pods` and `backups.approved_pods`.
pub fn vetted_origins(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for url in config.federation.seed_pods.iter().chain(&config.backups.approved_pods) {
        match origin_of(url) {
            Ok(origin) if !out.contains(&origin) => out.push(origin),
            Ok(_) => {}
            Err(e) => tracing::warn!("backup pods: ignoring {url:?}: {e}"),
        }
    }
    out
}

/// This pod's own origin.
pub fn own_origin(config: &Config) -> Option<String> {
    origin_of(&config.public_url()).ok()
}

/// One stored pod.
pub fn pod(store: &Store, origin: &str) -> Result<Option<PodInfo>> {
    PodDirectory::pod(store, origin)
}

/// Every stored pod, by origin.
pub fn stored(store: &Store) -> Result<Vec<(String, PodInfo)>> {
    store.pods()
}

/// Every pod this pod knows, vetted ones first, then by origin; the vetted pods that
/// were never read yet are listed too (not available).
pub fn directory(store: &Store, config: &Config) -> Result<Vec<PodView>> {
    let vetted = vetted_origins(config);
    let own = own_origin(config);
    let mut stored = stored(store)?;
    for origin in &vetted {
        if !stored.iter().any(|(o, _)| o == origin) {
            stored.push((origin.clone(), PodInfo::default()));
        }
    }
    let mut out: Vec<PodView> = stored
        .into_iter()
        .map(|(origin, info)| {
            let is_self = own.as_deref() == Some(origin.as_str());
            PodView {
                vetted: vetted.contains(&origin),
                available: !is_self && info.accepting(),
                is_self,
                origin,
                info,
            }
        })
        .collect();
    out.sort_by(|a, b| b.vetted.cmp(&a.vetted).then_with(|| a.origin.cmp(&b.origin)));
    Ok(out)
}

/// The pods a backup of `size` bytes can go to now, except those in `exclude`.
pub fn available(store: &Store, config: &Config, size: u64, exclude: &[&str]) -> Result<Vec<PodView>> {
    Ok(directory(store, config)?
        .into_iter()
        .filter(|p| p.available && p.info.max_bytes.is_none_or(|max| size <= max))
        .filter(|p| !exclude.contains(&p.origin.as_str()))
        .collect())
}

/// The automatic choice (`backups.choose_from`), at random within the best tier so
/// that whoever runs many pods cannot attract most backups; `None` when no available
/// pod qualifies. Tiers, best first: vetted pods (`seed_pods`, `approved_pods`), then
/// (with `ChooseFrom::Known`, the default) every other available pod, i.e. one
/// verified through federation whose NodeInfo said `acceptsBackups`. With
/// `ChooseFrom::Vetted` only vetted pods are taken.
pub fn choose_automatic(candidates: &[PodView], choose_from: ChooseFrom) -> Option<String> {
    let rank = |p: &PodView| -> Option<u8> {
        match (p.available, p.vetted, choose_from) {
            (false, _, _) => None,
            (true, true, _) => Some(0),
            (true, false, ChooseFrom::Known) => Some(1),
            (true, false, ChooseFrom::Vetted) => None,
        }
    };
    let best = candidates.iter().filter_map(rank).min()?;
    let tier: Vec<&PodView> = candidates.iter().filter(|p| rank(p) == Some(best)).collect();
    tier.choose(&mut rand::thread_rng()).map(|p| p.origin.clone())
}

/// Records, inside a unit of work, that `url`'s pod was seen through signature-verified
/// federation (a verified message from it, or a verified pod in an account's
/// `known_pods`). A new pod's NodeInfo is read at the next check. Not for hosts that
/// an unauthenticated request merely named. Returns whether the pod is new to the
/// directory (then wake the backup worker, so it reads the pod's NodeInfo soon).
pub fn note_seen_in(tx: &Tx, url: &str) -> TxResult<bool> {
    let Ok(origin) = origin_of(url) else {
        return Ok(false);
    };
    let stored = PodDirectoryTx::pod(tx, &origin)?;
    let new = stored.is_none();
    let mut info = stored.unwrap_or_default();
    if !info.seen_in_federation {
        info.seen_in_federation = true;
        tx.put_pod(&origin, &info)?;
    }
    Ok(new)
}

/// Makes sure every vetted pod has an entry (so the worker reads its NodeInfo).
pub fn ensure_vetted(store: &Store, config: &Config) -> Result<()> {
    let vetted = vetted_origins(config);
    store.transaction(|tx| {
        for origin in &vetted {
            if PodDirectoryTx::pod(tx, origin)?.is_none() {
                tx.put_pod(origin, &PodInfo::default())?;
            }
        }
        Ok(())
    })
}

/// What a NodeInfo document says about backups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfoFacts {
    pub accepts_backups: bool,
    pub max_bytes: Option<u64>,
}

/// Reads a pod's NodeInfo: `/.well-known/nodeinfo`, then the 2.1 (else 2.0) document
/// it links to, which must be on the same origin. Blocking: call it off the runtime.
pub fn fetch_nodeinfo(http: &HttpClient, origin: &str) -> Result<NodeInfoFacts> {
    let upstream = |why: String| Error::Upstream(format!("{origin}: {why}"));
    let links = http.get(&format!("{origin}/.well-known/nodeinfo"), "application/json")?;
    if links.status != 200 {
        return Err(upstream(format!("/.well-known/nodeinfo answered {}", links.status)));
    }
    let href = parse_nodeinfo_links(&links.body).map_err(upstream)?;
    if origin_of(&href).ok().as_deref() != Some(origin) {
        return Err(upstream("its NodeInfo link points to another origin".into()));
    }
    let document = http.get(&href, "application/json")?;
    if document.status != 200 {
        return Err(upstream(format!("its NodeInfo document answered {}", document.status)));
    }
    parse_nodeinfo(&document.body).map_err(upstream)
}

/// The NodeInfo 2.x link in a `/.well-known/nodeinfo` body; `Err` says why there is none.
pub fn parse_nodeinfo_links(body: &[u8]) -> std::result::Result<String, String> {
    let links: Value = serde_json::from_slice(body).map_err(|_| "/.well-known/nodeinfo is not JSON".to_string())?;
    nodeinfo_href(&links).ok_or_else(|| "/.well-known/nodeinfo links no NodeInfo 2.x".to_string())
}

/// What a NodeInfo document body says about backups; `Err` says why it is unreadable.
pub fn parse_nodeinfo(body: &[u8]) -> std::result::Result<NodeInfoFacts, String> {
    let document: Value = serde_json::from_slice(body).map_err(|_| "its NodeInfo document is not JSON".to_string())?;
    Ok(facts(&document))
}

/// The link to the NodeInfo document: schema 2.1 preferred, else 2.0.
fn nodeinfo_href(links: &Value) -> Option<String> {
    let links = links.get("links")?.as_array()?;
    ["2.1", "2.0"].iter().find_map(|version| {
        let rel = format!("http://nodeinfo.diaspora.software/ns/schema/{version}");
        links
            .iter()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some(rel.as_str()))
            .and_then(|l| l.get("href")?.as_str())
            .map(str::to_string)
    })
}

/// `metadata.acceptsBackups` (only a JSON `true` counts) and `metadata.backupMaxBytes`.
fn facts(document: &Value) -> NodeInfoFacts {
    let metadata = document.get("metadata");
    NodeInfoFacts {
        accepts_backups: metadata.and_then(|m| m.get("acceptsBackups")).and_then(Value::as_bool) == Some(true),
        max_bytes: metadata.and_then(|m| m.get("backupMaxBytes")).and_then(Value::as_u64),
    }
}

/// Applies a NodeInfo read to a pod's entry; returns the entry before and after.
pub fn record_check(
    store: &Store,
    origin: &str,
    outcome: &Result<NodeInfoFacts>,
    now: u64,
    next_check: u64,
) -> Result<(PodInfo, PodInfo)> {
    store.transaction(|tx| {
        let before = PodDirectoryTx::pod(tx, origin)?.unwrap_or_default();
        let mut after = before.clone();
        after.last_checked_unix = Some(now);
        after.next_check_unix = next_check;
        match outcome {
            Ok(facts) => {
                after.accepts_backups = facts.accepts_backups;
                after.max_bytes = facts.max_bytes;
                after.last_ok_unix = Some(now);
                after.last_error = None;
                after.refused_unix = None;
            }
            Err(e) => after.last_error = Some(e.client_message()),
        }
        tx.put_pod(origin, &after)?;
        Ok((before.clone(), after))
    })
}

/// Records that a pod answered a push with 403: it is not available until its
/// NodeInfo says otherwise.
pub fn record_refusal(store: &Store, origin: &str, now: u64) -> Result<()> {
    store.transaction(|tx| {
        let mut info = PodDirectoryTx::pod(tx, origin)?.unwrap_or_default();
        info.refused_unix = Some(now);
        tx.put_pod(origin, &info)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(origin: &str, vetted: bool, available: bool) -> PodView {
        PodView {
            origin: origin.into(),
            vetted,
            available,
            is_self: false,
            info: PodInfo::default(),
        }
    }

    #[test]
    fn the_automatic_choice_prefers_vetted_pods_and_spreads() {
        let pods = [
            view("https://a.example", true, true),
            view("https://b.example", true, true),
            view("https://c.example", false, true),
            view("https://d.example", true, false),
        ];
        for choose_from in [ChooseFrom::Known, ChooseFrom::Vetted] {
            let mut seen = std::collections::BTreeMap::new();
            for _ in 0..400 {
                *seen.entry(choose_automatic(&pods, choose_from).unwrap()).or_insert(0) += 1;
            }
            assert_eq!(
                seen.keys().cloned().collect::<Vec<_>>(),
                vec!["https://a.example", "https://b.example"],
                "vetted pods first ({choose_from:?})"
            );
            assert!(
                seen.values().all(|&n| n > 100),
                "random, not always the first: {seen:?}"
            );
        }
    }

    #[test]
    fn without_vetted_pods_known_takes_federation_pods_and_vetted_takes_none() {
        let pods = [
            view("https://c.example", false, true),
            view("https://e.example", false, true),
            view("https://d.example", true, false),
            view("https://f.example", false, false),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(choose_automatic(&pods, ChooseFrom::Known).unwrap());
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            vec!["https://c.example", "https://e.example"],
            "the default takes any available pod, never an unavailable one"
        );
        assert_eq!(
            choose_automatic(&pods, ChooseFrom::Vetted),
            None,
            "\"vetted\": unvetted or unavailable pods are never chosen"
        );
        assert_eq!(
            choose_automatic(&pods[2..], ChooseFrom::Known),
            None,
            "nothing available"
        );
    }

    #[test]
    fn nodeinfo_links_prefer_2_1_and_metadata_is_read_strictly() {
        let links = json!({"links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "https://p.example/nodeinfo/2.0"},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": "https://p.example/nodeinfo/2.1"},
        ]});
        assert_eq!(nodeinfo_href(&links).unwrap(), "https://p.example/nodeinfo/2.1");
        assert_eq!(nodeinfo_href(&json!({"links": []})), None);
        assert_eq!(
            facts(&json!({"metadata": {"acceptsBackups": true, "backupMaxBytes": 1024}})),
            NodeInfoFacts {
                accepts_backups: true,
                max_bytes: Some(1024)
            }
        );
        assert!(!facts(&json!({"metadata": {"acceptsBackups": "true"}})).accepts_backups);
        assert!(!facts(&json!({})).accepts_backups);
    }

    #[test]
    fn refusing_is_said_plainly_and_unreachable_is_not_refusing() {
        let mut info = PodInfo {
            accepts_backups: true,
            last_ok_unix: Some(1),
            ..Default::default()
        };
        assert!(info.accepting() && !info.refuses());
        info.last_error = Some("down".into());
        assert!(
            !info.accepting() && !info.refuses(),
            "unreachable: not available, not refusing"
        );
        info.last_error = None;
        info.refused_unix = Some(2);
        assert!(!info.accepting() && info.refuses());
        let closed = PodInfo {
            accepts_backups: false,
            last_ok_unix: Some(1),
            ..Default::default()
        };
        assert!(closed.refuses());
        assert!(!PodInfo::default().refuses(), "never read: nothing said yet");
    }
}
