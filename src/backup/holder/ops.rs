//! What the holder does for each request: pushes, status checks, confirmations,
//! restores of its slots, and what it lists for the podmin.

use super::*;

impl<S: SlotStore> Holder<S> {
    pub fn new(store: S, policy: Policy, mailer: Mailer) -> Holder<S> {
        Holder {
            store,
            policy: Arc::new(policy),
            mailer,
        }
    }

    /// The same holder under another policy (a changed configuration, tests).
    pub fn with_policy(&self, policy: Policy) -> Holder<S>
    where
        S: Clone,
    {
        Holder::new(self.store.clone(), policy, self.mailer.clone())
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The largest push body read: about 4/3 of the largest backup plus the envelope.
    /// With backups off only deletes are answered, and they fit in the envelope.
    pub fn body_limit(&self) -> u64 {
        if self.policy.accept_backups {
            self.policy.max_backup_bytes.div_ceil(3) * 4 + ENVELOPE_BYTES
        } else {
            ENVELOPE_BYTES
        }
    }

    /// The answer to a body over [`Holder::body_limit`]: 403 when backups are off
    /// (check 1: such a body can only carry a new backup), else 413.
    pub fn oversized(&self, message: String) -> Error {
        if self.policy.accept_backups {
            Error::TooLarge(message)
        } else {
            not_accepting()
        }
    }

    /// Whether NodeInfo may advertise `acceptsBackups`: opted in and the confirmed
    /// quota not full. The unconfirmed total does not count: strangers can fill it
    /// (issue #17), and home pods move their users away from a pod that stops
    /// advertising, so it must not switch the pod off; a full unconfirmed quota answers
    /// new slots 507 instead.
    pub fn accepts_backups(&self) -> Result<bool> {
        if !self.policy.accept_backups {
            return Ok(false);
        }
        let totals = self.store.totals()?;
        Ok(totals.confirmed_bytes < self.policy.quota_bytes)
    }

    /// Handles one push body, in the order of docs/holder-api.md, "Check order": 403,
    /// 413/507, 400, 401, then the slot's state (202, 200, 409, 410). "Stored" and
    /// "deleted" are answered only once durable.
    pub async fn push(&self, body: &[u8]) -> Result<PushOutcome> {
        let now = crate::now_unix();
        // Just enough parsing to name the slot (check 1) and size the backup (check 2).
        let raw = match RawPush::parse(body) {
            Ok(raw) => raw,
            Err(_) if !self.policy.accept_backups => return Err(not_accepting()),
            Err(e) => return Err(e),
        };
        let key = raw.key();
        let held = match (raw.email(), &key) {
            (Some(email), Ok(key)) => self.store.slot(&SlotKey {
                email: email.to_string(),
                fingerprint: key.fingerprint(),
            })?,
            _ => None,
        };
        // 1. Only deletes of held slots are answered while backups are off.
        let is_delete = raw.content() == RawContent::Delete;
        if !self.policy.accept_backups && (held.is_none() || !is_delete) {
            return Err(not_accepting());
        }
        // 2. Size and quota.
        if let Some(len) = raw.backup_len() {
            if len > self.policy.max_backup_bytes {
                return Err(Error::TooLarge(format!(
                    "the backup is larger than this pod's limit of {} bytes",
                    self.policy.max_backup_bytes
                )));
            }
            let totals = self.store.totals()?;
            check_quota(&self.policy, &totals, held.as_ref(), len)?;
        }
        // 3. Format, key, .lfbk header and costs, then the signature.
        let push = raw.validate(key, now as i64)?;
        drop(raw);
        if let Some(lfbk) = &push.backup {
            crate::sealed::check_header_for_holder(lfbk).map_err(|e| Error::bad(format!("backup: {e}")))?;
        }
        // The bytes are staged (written, then synced) only once the signature holds, and only
        // when the slot as read above would take them; a refused push costs no write.
        let worth_staging = held.as_ref().is_none_or(|slot| refusal(slot, push.sequence).is_none());
        let store = self.store.clone();
        let (push, staged) = tokio::task::spawn_blocking(move || {
            push.verify()?;
            let staged = match &push.backup {
                Some(lfbk) if worth_staging => Some(store.stage(lfbk)?),
                _ => None,
            };
            Ok::<_, Error>((push, staged))
        })
        .await
        .map_err(|e| Error::internal(format!("signature check stopped: {e}")))??;
        // 4–7. The slot's state, compared and changed in one unit of work, once the
        // staged bytes are durable; 8. answered once the unit is durable too.
        let needs_mail = held.as_ref().is_none_or(|s| !s.confirmed);
        let mail_id = if needs_mail { Some(self.store.mail_id()?) } else { None };
        let token = LinkToken::generate();
        let context = PushContext {
            policy: self.policy.clone(),
            now,
            mail_id,
            token,
        };
        let applied = self
            .store
            .unit_when_durable(staged, move |tx, staged| apply_push(tx, &push, &context, staged))
            .await?;
        if applied.mailed {
            self.mailer.wake();
        }
        Ok(applied.outcome)
    }

    /// Handles one status body: 403 (unknown slot while backups are off), 400, 401,
    /// then 404, 410 or the slot's status.
    pub async fn status(&self, body: &[u8]) -> Result<StatusOutcome> {
        let raw = match RawPush::parse(body) {
            Ok(raw) => raw,
            Err(_) if !self.policy.accept_backups => return Err(not_accepting()),
            Err(e) => return Err(e),
        };
        let key = raw.key();
        let slot_key = match (raw.email(), &key) {
            (Some(email), Ok(key)) => Some(SlotKey {
                email: email.to_string(),
                fingerprint: key.fingerprint(),
            }),
            _ => None,
        };
        let held = match &slot_key {
            Some(k) => self.store.slot(k)?,
            None => None,
        };
        if !self.policy.accept_backups && held.is_none() {
            return Err(not_accepting());
        }
        let request = StatusRequest::validate(&raw, key, crate::now_unix() as i64)?;
        tokio::task::spawn_blocking(move || request.verify())
            .await
            .map_err(|e| Error::internal(format!("signature check stopped: {e}")))??;
        let Some(slot) = held else {
            return Err(Error::NotFound(
                "this pod holds no backup for that address and key".into(),
            ));
        };
        if slot.restored_at.is_some() {
            return Ok(StatusOutcome::Restored);
        }
        Ok(StatusOutcome::Held(SlotStatus {
            sequence: slot.sequence,
            sha256: slot.sha256.map(hex::encode),
            confirmed: slot.confirmed,
        }))
    }

    /// The slot a confirmation link points at, if the link is still valid. Changes
    /// nothing (a GET must not).
    pub fn pending(&self, token: &str) -> Result<PendingSlot> {
        let (hash, record) = self.valid_token(token)?;
        let key = SlotKey {
            email: record.email.clone(),
            fingerprint: Fingerprint(record.fingerprint),
        };
        match self.store.slot(&key)? {
            Some(slot) if slot.confirm_token == Some(hash) && !slot.confirmed && !slot.rejected => Ok(PendingSlot {
                email: key.email,
                short_fingerprint: key.fingerprint.short(),
                size: slot.size,
                last_push_unix: slot.last_push_unix,
            }),
            _ => Err(invalid_link()),
        }
    }

    fn valid_token(&self, token: &str) -> Result<([u8; 32], ConfirmToken)> {
        let hash = token_hash(token).ok_or_else(invalid_link)?;
        match self.store.token(&hash)? {
            Some(record) if record.expires_unix > crate::now_unix() => Ok((hash, record)),
            _ => Err(invalid_link()),
        }
    }

    /// Confirms a slot or deletes it as "not mine", consuming the link's token; durable
    /// before it returns.
    pub async fn decide(&self, token: &str, action: ConfirmAction) -> Result<PendingSlot> {
        let hash = token_hash(token).ok_or_else(invalid_link)?;
        let now = crate::now_unix();
        let pending = self.store.unit(|tx| {
            let Some(record) = tx.token(&hash)? else {
                return crate::store::abort(invalid_link());
            };
            let key = SlotKey {
                email: record.email.clone(),
                fingerprint: Fingerprint(record.fingerprint),
            };
            tx.remove_token(&hash)?;
            let slot = match tx.slot(&key)? {
                Some(slot)
                    if record.expires_unix > now
                        && slot.confirm_token == Some(hash)
                        && !slot.confirmed
                        && !slot.rejected =>
                {
                    slot
                }
                // Expired or superseded: the token is removed all the same.
                _ => return Ok(None),
            };
            let mut new = slot.clone();
            new.confirm_token = None;
            match action {
                ConfirmAction::Confirm => new.confirmed = true,
                ConfirmAction::Reject => {
                    new.rejected = true;
                    new.size = 0;
                    new.sha256 = None;
                    tx.remove_backup(&key)?;
                }
            }
            let mut totals = tx.totals()?;
            totals.replace(Some(&slot), Some(&new));
            tx.put_totals(&totals)?;
            tx.put_slot(&key, &new)?;
            Ok(Some(PendingSlot {
                email: key.email.clone(),
                short_fingerprint: key.fingerprint.short(),
                size: slot.size,
                last_push_unix: slot.last_push_unix,
            }))
        })?;
        self.store.durable().await?;
        pending.ok_or_else(invalid_link)
    }

    /// Marks a slot restored (the restore flow calls this inside its own work later;
    /// tests use it now). Its pushes then answer 410.
    pub async fn mark_restored(&self, key: &SlotKey) -> Result<()> {
        let now = crate::now_unix();
        self.store.unit(|tx| {
            let Some(slot) = tx.slot(key)? else {
                return crate::store::abort(Error::NotFound("no such slot".into()));
            };
            let mut new = slot.clone();
            new.restored_at.get_or_insert(now);
            let mut totals = tx.totals()?;
            totals.replace(Some(&slot), Some(&new));
            tx.put_totals(&totals)?;
            tx.put_slot(key, &new)
        })?;
        self.store.durable().await
    }

    /// The slots of `email` that a restore may open: holding a backup, not restored,
    /// not rejected as "not mine". Confirmed slots first, then the most recently
    /// pushed first (docs/restore.md, "3. The pass phrase").
    pub fn restorable(&self, email: &str) -> Result<Vec<(SlotKey, Slot)>> {
        let mut slots: Vec<(SlotKey, Slot)> = self
            .store
            .slots_of(email)?
            .into_iter()
            .filter(|(_, s)| s.holds_backup() && s.restored_at.is_none() && !s.rejected)
            .collect();
        slots.sort_by(|(_, a), (_, b)| {
            b.confirmed
                .cmp(&a.confirmed)
                .then(b.last_push_unix.cmp(&a.last_push_unix))
        });
        Ok(slots)
    }

    /// Erases the ciphertext of slots restored at least [`RESTORED_KEPT_SECS`] before
    /// `now`; their tombstones stay. Returns how many were erased.
    pub async fn erase_restored(&self, now: u64) -> Result<usize> {
        let due: Vec<SlotKey> = self
            .store
            .slots()?
            .into_iter()
            .filter(|(_, s)| s.holds_backup() && s.restored_at.is_some_and(|at| at + RESTORED_KEPT_SECS <= now))
            .map(|(k, _)| k)
            .collect();
        let mut erased = 0;
        for key in &due {
            let done = self.store.unit(|tx| {
                let Some(slot) = tx.slot(key)? else { return Ok(false) };
                if !slot.holds_backup() || slot.restored_at.is_none() {
                    return Ok(false);
                }
                let mut new = slot.clone();
                new.size = 0;
                new.sha256 = None;
                tx.remove_backup(key)?;
                let mut totals = tx.totals()?;
                totals.replace(Some(&slot), Some(&new));
                tx.put_totals(&totals)?;
                tx.put_slot(key, &new)?;
                Ok(true)
            })?;
            erased += usize::from(done);
        }
        if erased > 0 {
            self.store.durable().await?;
        }
        Ok(erased)
    }

    /// Every slot, for the podmin: never the content.
    pub fn list(&self) -> Result<Vec<SlotInfo>> {
        Ok(self
            .store
            .slots()?
            .into_iter()
            .map(|(key, slot)| SlotInfo {
                email: key.email,
                fingerprint: key.fingerprint.hex(),
                confirmed: slot.confirmed,
                rejected: slot.rejected,
                restored: slot.restored_at.is_some(),
                holds_backup: slot.holds_backup(),
                size: slot.size,
                sequence: slot.sequence,
                last_push_unix: slot.last_push_unix,
            })
            .collect())
    }

    /// Counts and bytes, confirmed and unconfirmed.
    pub fn stats(&self) -> Result<Totals> {
        self.store.totals()
    }
}
