//! NodeInfo 2.0 and 2.1 (`/.well-known/nodeinfo`, `/nodeinfo/2.x`): how other pods
//! learn that this pod speaks diaspora* and whether it accepts backups.

use serde_json::{json, Value};

use crate::pod::Pod;

/// The `/.well-known/nodeinfo` links document.
pub fn well_known(pod: &Pod) -> Value {
    let base = pod.config.public_url();
    json!({
        "links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": format!("{base}/nodeinfo/2.1")},
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": format!("{base}/nodeinfo/2.0")},
        ]
    })
}

/// The figures NodeInfo reports that change at run time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub users: u64,
    pub active_half_year: u64,
    pub active_month: u64,
    /// Whether the backup quota still has room.
    pub backup_room: bool,
}

/// The NodeInfo document for `version` ("2.0" or "2.1").
pub fn document(pod: &Pod, version: &str, usage: Usage) -> Value {
    let backups = &pod.config.backups;
    let software = json!({"name": "lifeboat", "version": env!("CARGO_PKG_VERSION")});
    json!({
        "version": version,
        "software": software,
        "protocols": ["diaspora"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": pod.config.accounts.open_registrations,
        "usage": {
            "users": {
                "total": usage.users,
                "activeHalfyear": usage.active_half_year,
                "activeMonth": usage.active_month,
            }
        },
        "metadata": {
            "nodeName": pod.config.public_host(),
            "acceptsBackups": backups.allow_backups_and_migration && usage.backup_room,
            "backupMaxBytes": backups.max_backup_bytes,
        }
    })
}
