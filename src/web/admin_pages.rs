//! The podmin's page (`/admin`), for accounts listed in `accounts.admins`: the backups
//! this pod holds for others — the same figures as `lifeboat backups stats` and
//! `backups list`, never a backup's content.

use maud::html;
use warp::http::StatusCode;

use super::layout::{page, require};
use super::{Request, Response};
use crate::backup::holder::Holder;
use crate::pod::Pod;
use crate::store::backups::SledSlots;
use crate::{Error, Result};

pub async fn admin(pod: &Pod, holder: &Holder<SledSlots>, req: &Request) -> Result<Response> {
    let account = proceed!(require(pod, req)?);
    if !pod.config.accounts.admins.contains(&account.username) {
        return Err(Error::Forbidden("this page is for the pod's admins".into()));
    }
    let totals = holder.stats()?;
    let slots = holder.list()?;
    let backups = &pod.config.backups;
    let body = html! {
        h1 { "Pod administration" }
        section.card #backups-stats {
            h2 { "Backups held for other pods" }
            p { "This pod "
                @if backups.allow_backups_and_migration { strong { "accepts" } } @else { strong { "does not accept" } }
                " new backups (" code { "backups.allow_backups_and_migration" } "). Held backups stay restorable either way." }
            table {
                tbody {
                    tr { th { "Confirmed" } td.confirmed-slots { (totals.confirmed_slots) } td { (totals.confirmed_bytes) " bytes of " (backups.quota_bytes) } }
                    tr { th { "Awaiting confirmation" } td.unconfirmed-slots { (totals.unconfirmed_slots) } td { (totals.unconfirmed_bytes) " bytes of " (backups.unconfirmed_quota_bytes) } }
                    tr { th { "Restored" } td { (totals.restored) } td {} }
                    tr { th { "Tombstones (deleted)" } td { (totals.tombstones) } td {} }
                }
            }
        }
        section.card #backups-list {
            h2 { "Slots" }
            @if slots.is_empty() {
                p { "No backups held." }
            } @else {
                table {
                    thead { tr { th { "Email" } th { "Key" } th { "State" } th { "Size" } th { "Sequence" } th { "Last push" } } }
                    tbody {
                        @for slot in &slots {
                            tr.slot {
                                td { (slot.email) }
                                td { code { (slot.fingerprint.get(..16).unwrap_or(&slot.fingerprint)) } }
                                td { @if slot.restored { "restored" } @else if slot.rejected { "rejected" } @else if slot.confirmed { "confirmed" } @else { "awaiting confirmation" }
                                     @if !slot.holds_backup { " (no backup held)" } }
                                td { (slot.size) }
                                td { (slot.sequence) }
                                td { (time::OffsetDateTime::from_unix_timestamp(slot.last_push_unix as i64).map(|t| t.date().to_string()).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(pod, req, StatusCode::OK, Some(&account), "Administration", body))
}
