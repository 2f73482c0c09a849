//! The units of work behind the holder's answers: the push rules in their order
//! (docs/holder-api.md, "Check order"), quotas, eviction of unconfirmed slots, the
//! confirmation mail that a first push queues, and marking a slot restored.

use super::*;

/// Marks a slot restored inside the restore's unit of work (docs/restore.md, "4.
/// Creating the account: one unit of work"): it must still hold the backup whose
/// SHA-256 is `expected_sha256` (the one the pass phrase opened) and not be restored
/// yet. Its link to a pending confirmation goes; its pushes answer 410 from now on.
pub fn mark_restored_in<T: SlotTx>(tx: &T, key: &SlotKey, expected_sha256: &[u8; 32], now: u64) -> TxResult<()> {
    let slot = match tx.slot(key)? {
        Some(slot) if slot.restored_at.is_none() && !slot.rejected => slot,
        Some(_) => {
            return crate::store::abort(Error::Gone(
                "this backup has been restored already; a backup can be restored only once".into(),
            ))
        }
        None => return crate::store::abort(Error::Gone("this pod no longer holds that backup".into())),
    };
    if slot.sha256.as_ref() != Some(expected_sha256) {
        return crate::store::abort(Error::Conflict(
            "the backup changed on this pod since your pass phrase opened it (your home pod sent a newer one): enter your pass phrase again".into(),
        ));
    }
    let mut new = slot.clone();
    new.restored_at = Some(now);
    if let Some(hash) = new.confirm_token.take() {
        tx.remove_token(&hash)?;
    }
    let mut totals = tx.totals()?;
    totals.replace(Some(&slot), Some(&new));
    tx.put_totals(&totals)?;
    tx.put_slot(key, &new)
}

pub(super) fn not_accepting() -> Error {
    Error::Forbidden("this pod does not accept new backups".into())
}

pub(super) fn invalid_link() -> Error {
    Error::NotFound(
        "this confirmation link is not valid any more: it was used already, it expired, or a newer one was sent".into(),
    )
}

pub(super) fn insufficient() -> Error {
    Error::InsufficientStorage("this pod's backup storage is full".into())
}

/// The stored form of a confirmation link's token, or `None` if the text is not one.
/// Links mailed before tokens took one form (64 hex digits, hashed as the bytes they
/// spell) keep working until they expire.
pub(super) fn token_hash(token: &str) -> Option<[u8; 32]> {
    LinkToken::hash_of(token).or_else(|| {
        let bytes = hex::decode(token.trim()).ok()?;
        (bytes.len() == 32).then(|| Sha256::digest(&bytes).into())
    })
}

/// 507 when storing `len` bytes in `held`'s slot (a new slot when `None`) would take
/// its class of slots over its quota.
pub(super) fn check_quota(policy: &Policy, totals: &Totals, held: Option<&Slot>, len: u64) -> Result<()> {
    let replaced = held.map_or(0, |s| s.size);
    let (used, quota) = match held {
        Some(slot) if slot.confirmed => (totals.confirmed_bytes, policy.quota_bytes),
        _ => (totals.unconfirmed_bytes, policy.unconfirmed_quota_bytes),
    };
    if used.saturating_sub(replaced).saturating_add(len) > quota {
        return Err(insufficient());
    }
    Ok(())
}

/// The compare-and-store of one push, inside a unit of work (so two racing pushes
/// with the same sequence cannot both win).
pub(super) fn apply_push<T: SlotTx>(
    tx: &T,
    push: &Push,
    cx: &PushContext,
    staged: Option<&T::Staged>,
) -> TxResult<Applied> {
    let key = SlotKey {
        email: push.email.clone(),
        fingerprint: push.key.fingerprint(),
    };
    let old = tx.slot(&key)?;
    let nothing = |outcome| Ok(Applied { outcome, mailed: false });
    if let Some(refused) = old.as_ref().and_then(|slot| refusal(slot, push.sequence)) {
        return nothing(refused);
    }
    let mut totals = tx.totals()?;
    let mut address = tx.address(&push.email)?;
    if old.is_none() {
        evict_oldest_unconfirmed(tx, &push.email, &mut address, &mut totals)?;
        address.slots.push(key.fingerprint.0);
    }
    let mut new = old.clone().unwrap_or_else(|| Slot {
        sequence: 0,
        confirmed: false,
        rejected: false,
        restored_at: None,
        created_unix: cx.now,
        last_push_unix: cx.now,
        created_at: String::new(),
        size: 0,
        sha256: None,
        confirm_token: None,
        confirm_mailed_unix: None,
    });
    new.sequence = push.sequence;
    new.last_push_unix = cx.now;
    new.created_at = push.created_at.clone();
    match &push.backup {
        Some(lfbk) => {
            // Not staged: the slot read before the signature check refused this push,
            // and only an eviction (its slot gone) can change that since. Such a push
            // would make a new unconfirmed slot; it is answered as one, and the home
            // pod's next push is stored.
            let Some(staged) = staged else {
                return nothing(PushOutcome::AwaitingConfirmation);
            };
            let quota = if new.confirmed {
                (totals.confirmed_bytes, cx.policy.quota_bytes)
            } else {
                (totals.unconfirmed_bytes, cx.policy.unconfirmed_quota_bytes)
            };
            let replaced = old.as_ref().map_or(0, |s| s.size);
            if quota.0.saturating_sub(replaced).saturating_add(lfbk.len() as u64) > quota.1 {
                return crate::store::abort(insufficient());
            }
            new.size = lfbk.len() as u64;
            new.sha256 = push.sha256;
            tx.put_backup(&key, staged)?;
        }
        None => {
            new.size = 0;
            new.sha256 = None;
            if old.as_ref().is_some_and(Slot::holds_backup) {
                tx.remove_backup(&key)?;
            }
        }
    }
    let mut mailed = false;
    if !new.confirmed && new.holds_backup() {
        mailed = maybe_mail(tx, &key, &mut new, &mut address, cx)?;
    }
    totals.replace(old.as_ref(), Some(&new));
    tx.put_totals(&totals)?;
    tx.put_slot(&key, &new)?;
    tx.put_address(&push.email, &address)?;
    let outcome = match (new.confirmed, push.backup.is_some()) {
        (false, _) => PushOutcome::AwaitingConfirmation,
        (true, true) => PushOutcome::Stored(push.sequence),
        (true, false) => PushOutcome::Deleted(push.sequence),
    };
    Ok(Applied { outcome, mailed })
}

/// Why a slot refuses a push of `sequence` whatever it carries, if it does.
pub(super) fn refusal(slot: &Slot, sequence: u64) -> Option<PushOutcome> {
    if slot.restored_at.is_some() {
        Some(PushOutcome::Restored)
    } else if slot.confirmed && sequence <= slot.sequence {
        Some(PushOutcome::Stale(slot.sequence))
    } else if !slot.confirmed && (slot.rejected || sequence <= slot.sequence) {
        Some(PushOutcome::AwaitingConfirmation)
    } else {
        None
    }
}

/// Makes room for a new unconfirmed slot: with [`MAX_UNCONFIRMED_PER_EMAIL`] already
/// there, the oldest unconfirmed one goes (its backup and link with it). Confirmed and
/// rejected slots are never evicted: the former go only by their own delete, the
/// latter keep a stranger's key from mailing the address again.
pub(super) fn evict_oldest_unconfirmed<T: SlotTx>(
    tx: &T,
    email: &str,
    address: &mut AddressRecord,
    totals: &mut Totals,
) -> TxResult<()> {
    let mut unconfirmed = Vec::new();
    for fingerprint in &address.slots {
        let key = SlotKey {
            email: email.to_string(),
            fingerprint: Fingerprint(*fingerprint),
        };
        if let Some(slot) = tx.slot(&key)? {
            if !slot.confirmed && !slot.rejected && slot.restored_at.is_none() {
                unconfirmed.push((key, slot));
            }
        }
    }
    if unconfirmed.len() < MAX_UNCONFIRMED_PER_EMAIL {
        return Ok(());
    }
    // `address.slots` is in creation order, so the first is the oldest.
    let (key, slot) = &unconfirmed[0];
    tx.remove_slot(key)?;
    tx.remove_backup(key)?;
    if let Some(hash) = &slot.confirm_token {
        tx.remove_token(hash)?;
    }
    totals.replace(Some(slot), None);
    address.slots.retain(|f| *f != key.fingerprint.0);
    Ok(())
}

/// Queues the confirmation mail for an unconfirmed slot that holds a backup, when none
/// was sent or its link expired, within the caps: one per address per day, and
/// [`Policy::confirmation_mails_per_hour`] in all. A capped mail is tried again at a
/// later push.
pub(super) fn maybe_mail<T: SlotTx>(
    tx: &T,
    key: &SlotKey,
    slot: &mut Slot,
    address: &mut AddressRecord,
    cx: &PushContext,
) -> TxResult<bool> {
    let Some(mail_id) = cx.mail_id else {
        return Ok(false);
    };
    let link_alive = slot
        .confirm_mailed_unix
        .is_some_and(|at| at + CONFIRM_TOKEN_TTL_SECS > cx.now);
    if link_alive {
        return Ok(false);
    }
    if address
        .last_mail_unix
        .is_some_and(|at| at + MAIL_PER_ADDRESS_SECS > cx.now)
    {
        return Ok(false);
    }
    let mut hour = tx.mail_hour()?;
    let this_hour = cx.now / 3600;
    if hour.hour != this_hour {
        hour = MailHour {
            hour: this_hour,
            count: 0,
        };
    }
    if hour.count >= cx.policy.confirmation_mails_per_hour {
        return Ok(false);
    }
    hour.count += 1;
    tx.put_mail_hour(&hour)?;
    let hash = cx.token.hash();
    if let Some(previous) = slot.confirm_token.replace(hash) {
        tx.remove_token(&previous)?;
    }
    tx.put_token(
        &hash,
        &ConfirmToken {
            email: key.email.clone(),
            fingerprint: key.fingerprint.0,
            expires_unix: cx.now + CONFIRM_TOKEN_TTL_SECS,
        },
    )?;
    slot.confirm_mailed_unix = Some(cx.now);
    address.last_mail_unix = Some(cx.now);
    tx.enqueue_mail(mail_id, &confirmation_mail(&cx.policy, key, cx.token.as_str()))?;
    Ok(true)
}
