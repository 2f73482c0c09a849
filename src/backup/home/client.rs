//! The home pod as a client of the holder API (docs/holder-api.md): signed pushes,
//! status checks and deletes over the one outbound HTTP client, and what their answers
//! mean for the account's state.

use super::*;

/// What a holder answered.
pub(super) enum Answer {
    Status(u16, Option<Value>),
    Unreachable(String),
}

impl Answer {
    fn sequence(&self) -> Option<u64> {
        match self {
            Answer::Status(_, Some(v)) => v.get("sequence").and_then(Value::as_u64),
            _ => None,
        }
    }

    fn describe(&self, origin: &str) -> String {
        match self {
            Answer::Status(code, body) => {
                let detail = body
                    .as_ref()
                    .and_then(|b| b.get("error").or_else(|| b.get("status")))
                    .and_then(Value::as_str)
                    .map(|s| format!(": {}", tame(s)))
                    .unwrap_or_default();
                format!("{} answered {code}{detail}", host_of(origin))
            }
            Answer::Unreachable(why) => why.clone(),
        }
    }
}

/// Another pod's words, fit to show on a page and in a mail: one line, at most 200
/// characters (a hostile pod must not write our users' mails).
pub(super) fn tame(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub(super) async fn post(pod: &Pod, origin: &str, path: &str, body: Vec<u8>) -> Result<Answer> {
    let http = pod.http.clone();
    let url = format!("{origin}{path}");
    let response = tokio::task::spawn_blocking(move || http.post(&url, "application/json", &body))
        .await
        .map_err(Error::internal)?;
    Ok(match response {
        Ok(r) => Answer::Status(r.status, serde_json::from_slice(&r.body).ok()),
        Err(e) => Answer::Unreachable(e.client_message()),
    })
}

/// Pushes the account's backup unless it is unchanged since the last acknowledged
/// push. Returns whether to go round again (a caught-up sequence, a refusal).
pub(super) async fn push(
    pod: &Arc<Pod>,
    sync: &BackupSync,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    report: &mut Report,
) -> Result<bool> {
    let Some(origin) = state.pod.clone() else {
        return Ok(false);
    };
    let Some(key) = account.sealing_key.clone() else {
        return Ok(false);
    };
    let archive = crate::account::archive::write_archive(account, &pod.config.public_host(), &pod.config.public_url())?;
    let content = content_digest(&archive, &key);
    if !state.force_push && state.acked.as_ref().is_some_and(|a| a.content == content) {
        tracing::debug!(username = %account.username, "backups: unchanged since the last push, not pushed");
        state.push_due = Some(now + timing.push_interval);
        report.skipped += 1;
        return Ok(false);
    }
    // A changed account: the pods it knows through verified federation join the directory.
    if !account.known_pods.is_empty() {
        let noted = pod.store.transaction(|tx| {
            let mut any = false;
            for origin in &account.known_pods {
                any |= pods::note_seen_in(tx, origin)?;
            }
            Ok(any)
        })?;
        if noted {
            // New pods: the worker reads their NodeInfo now.
            pod.signals.backups.ring();
        }
    }
    let sequence = state.next_sequence;
    let email = state.email.clone();
    let private_pem = account.private_key_pem.clone();
    let public_pem = account.public_key_pem.clone();
    let when = created_at(now_unix());
    let (lfbk, signature, farewell) = {
        let (email, when) = (email.clone(), when.clone());
        tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, String, SignedDelete)> {
            let lfbk = crate::sealed::seal(&archive, &key);
            let digest: [u8; 32] = Sha256::digest(&lfbk).into();
            let private = private_key_from_pem(&private_pem)?;
            let signature = sign_base64(
                &private,
                push_signed_text(&email, sequence, &when, Some(&digest)).as_bytes(),
            );
            let farewell = SignedDelete {
                signature: sign_base64(&private, push_signed_text(&email, sequence + 1, &when, None).as_bytes()),
                email,
                public_key_pem: public_pem,
                sequence: sequence + 1,
                created_at: when,
            };
            Ok((lfbk, signature, farewell))
        })
        .await
        .map_err(Error::internal)??
    };
    let lfbk_sha256: [u8; 32] = Sha256::digest(&lfbk).into();
    state.last_size = lfbk.len() as u64;
    // The sequence is spent, and the delete that would follow is kept, before sending.
    state.next_sequence = sequence + 1;
    state.farewell = Some(farewell);
    save(pod, &account.username, state, &[], None, true).await?;
    let body = json!({
        "version": 1,
        "email": email,
        "public_key": account.public_key_pem,
        "sequence": sequence,
        "created_at": when,
        "backup": base64::engine::general_purpose::STANDARD.encode(&lfbk),
        "signature": signature,
    })
    .to_string()
    .into_bytes();
    let _ = sync.inner.events.send(SyncEvent::PushStarted {
        username: account.username.clone(),
        pod: origin.clone(),
        sequence,
        bytes: lfbk.len() as u64,
        at: Instant::now(),
    });
    sync.inner.bytes_pushed.fetch_add(lfbk.len() as u64, Ordering::Relaxed);
    report.pushes += 1;
    report.bytes_pushed += lfbk.len() as u64;
    let answer = post(pod, &origin, "/api/lifeboat/v1/backups", body).await?;
    let now_done = now_unix().max(now);
    let mut mails = Vec::new();
    let again = match answer {
        Answer::Status(code @ (200 | 202), _) => {
            let confirmed = code == 200;
            state.acked = Some(Acked {
                sequence,
                content,
                lfbk_sha256,
                at_unix: now_done,
                confirmed,
            });
            state.slot = if confirmed {
                SlotState::Stored
            } else {
                SlotState::AwaitingConfirmation
            };
            state.last_success = Some((now_done, sequence));
            state.clear_failures();
            state.force_push = false;
            state.push_due = Some(now + timing.push_interval);
            if state.status_due.is_none() {
                state.status_due = Some(now + timing.status_interval);
            }
            for left in &mut state.left_behind {
                left.armed = true;
            }
            tracing::info!(username = %account.username, %origin, sequence, code, "backups: pushed");
            false
        }
        Answer::Status(409, _) if answer.sequence().is_some_and(|held| held >= sequence) => {
            let held = answer.sequence().unwrap_or(sequence);
            tracing::info!(username = %account.username, %origin, held, "backups: catching up with the held sequence");
            state.next_sequence = state.next_sequence.max(held + 1);
            state.force_push = true;
            state.push_due = Some(now);
            true
        }
        Answer::Status(410, _) => {
            restored(pod, state, account, &origin, now, &mut mails);
            false
        }
        Answer::Status(403, _) => {
            tracing::warn!(username = %account.username, %origin, "backups: the pod refuses backups (403)");
            pods::record_refusal(&pod.store, &origin, now_done)?;
            failed(state, timing, now, answer.describe(&origin));
            state.push_due = Some(now);
            true
        }
        _ => {
            let text = answer.describe(&origin);
            tracing::warn!(username = %account.username, %origin, "backups: push failed: {text}");
            failed(state, timing, now, text);
            false
        }
    };
    save(pod, &account.username, state, &mails, None, true).await?;
    Ok(again)
}

/// The weekly status check (docs/holder-api.md, "Status checks"): re-push when the
/// holder's copy is not what we last pushed. Returns whether to go round again (to
/// push).
pub(super) async fn status_check(
    pod: &Arc<Pod>,
    timing: &Timing,
    state: &mut SyncState,
    account: &Account,
    now: u64,
    report: &mut Report,
) -> Result<bool> {
    let (Some(origin), Some(acked)) = (state.pod.clone(), state.acked.clone()) else {
        return Ok(false);
    };
    report.status_checks += 1;
    let when = created_at(now_unix());
    let email = state.email.clone();
    let private_pem = account.private_key_pem.clone();
    let text = status_signed_text(&email, &when);
    let signature = tokio::task::spawn_blocking(move || -> Result<String> {
        Ok(sign_base64(&private_key_from_pem(&private_pem)?, text.as_bytes()))
    })
    .await
    .map_err(Error::internal)??;
    let body =
        json!({"email": email, "public_key": account.public_key_pem, "created_at": when, "signature": signature})
            .to_string()
            .into_bytes();
    let answer = post(pod, &origin, "/api/lifeboat/v1/backups/status", body).await?;
    state.status_due = Some(now + timing.status_interval);
    let mut mails = Vec::new();
    let again = match &answer {
        Answer::Status(200, Some(held)) => {
            let sequence = held.get("sequence").and_then(Value::as_u64).unwrap_or(0);
            let sha256 = held.get("sha256").and_then(Value::as_str);
            let confirmed = held.get("confirmed").and_then(Value::as_bool) == Some(true);
            if sequence == acked.sequence && sha256 == Some(hex::encode(acked.lfbk_sha256).as_str()) {
                state.slot = if confirmed {
                    SlotState::Stored
                } else {
                    SlotState::AwaitingConfirmation
                };
                if let Some(a) = state.acked.as_mut() {
                    a.confirmed = confirmed;
                }
                false
            } else {
                tracing::warn!(username = %account.username, %origin, held = sequence, ours = acked.sequence, "backups: the holder's copy differs; pushing again");
                state.next_sequence = state.next_sequence.max(sequence + 1);
                state.force_push = true;
                state.push_due = Some(now);
                true
            }
        }
        Answer::Status(404, _) => {
            tracing::warn!(username = %account.username, %origin, "backups: the holder lost the backup; pushing again");
            state.force_push = true;
            state.push_due = Some(now);
            true
        }
        Answer::Status(410, _) => {
            restored(pod, state, account, &origin, now, &mut mails);
            false
        }
        _ => {
            let text = format!("status check: {}", answer.describe(&origin));
            tracing::warn!(username = %account.username, %origin, "backups: {text}");
            state.last_error = Some(Event { at_unix: now, text });
            state.status_due = Some(now + timing.backoff.max.as_secs().max(1));
            false
        }
    };
    save(pod, &account.username, state, &mails, None, !mails.is_empty()).await?;
    Ok(again)
}

/// Sends the armed deletes that are due. A delete is done when the holder deleted it,
/// holds nothing (404, or 403 from a pod with backups off: it answers deletes of held
/// slots), or restored it (410). A stale answer is re-signed above the held sequence
/// while the account still has its key.
pub(super) async fn send_deletes(
    pod: &Arc<Pod>,
    timing: &Timing,
    state: &mut SyncState,
    account: Option<&Account>,
    now: u64,
    report: &mut Report,
) -> Result<()> {
    let due: Vec<usize> = (0..state.left_behind.len())
        .filter(|&i| state.left_behind[i].armed && state.left_behind[i].next_attempt_unix <= now)
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let mut done: Vec<usize> = Vec::new();
    for i in due {
        let left = state.left_behind[i].clone();
        report.deletes += 1;
        let answer = post(pod, &left.origin, "/api/lifeboat/v1/backups", left.delete.body()).await?;
        match answer {
            Answer::Status(200 | 202 | 403 | 404 | 410, _) => {
                tracing::info!(origin = %left.origin, sequence = left.delete.sequence, "backups: delete sent to a pod left behind");
                done.push(i);
            }
            Answer::Status(409, _) => {
                let held = answer.sequence().unwrap_or(left.delete.sequence);
                match account.filter(|a| !a.private_key_pem.is_empty()) {
                    Some(account) => {
                        let sequence = state.next_sequence.max(held + 1);
                        state.next_sequence = sequence + 1;
                        let when = created_at(now_unix());
                        let private_pem = account.private_key_pem.clone();
                        let text = push_signed_text(&left.delete.email, sequence, &when, None);
                        let signature = tokio::task::spawn_blocking(move || -> Result<String> {
                            Ok(sign_base64(&private_key_from_pem(&private_pem)?, text.as_bytes()))
                        })
                        .await
                        .map_err(Error::internal)??;
                        let entry = &mut state.left_behind[i];
                        entry.delete.sequence = sequence;
                        entry.delete.created_at = when;
                        entry.delete.signature = signature;
                        entry.next_attempt_unix = now;
                        // Durable before it is sent, like every sequence.
                        save(pod, &account.username, state, &[], None, true).await?;
                    }
                    None => {
                        tracing::warn!(origin = %left.origin, held, "backups: a delete is stale and the key is gone; giving it up");
                        done.push(i);
                    }
                }
            }
            _ => {
                let text = format!("delete: {}", answer.describe(&left.origin));
                let entry = &mut state.left_behind[i];
                entry.attempts = entry.attempts.saturating_add(1);
                entry.next_attempt_unix = now + timing.backoff.delay(entry.attempts).as_secs();
                entry.last_error = Some(text.clone());
                if now.saturating_sub(entry.created_unix) >= DELETE_GIVE_UP_SECS {
                    tracing::warn!(origin = %left.origin, "backups: giving up a delete after 30 days: {text}");
                    done.push(i);
                } else {
                    tracing::info!(origin = %left.origin, "backups: {text}");
                }
            }
        }
    }
    let mut index = 0;
    state.left_behind.retain(|_| {
        let keep = !done.contains(&index);
        index += 1;
        keep
    });
    Ok(())
}
