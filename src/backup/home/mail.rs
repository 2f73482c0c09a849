//! The wording of the mails the backup worker sends to a user.

use super::*;

pub(super) const KEEP_SAFE: &str = "Keep your backup pass phrase safe: write it down and keep it where you will find it even if this pod is gone. It is the only key to your backup. We never store it, never send it, and cannot recover it.";

pub(super) fn mail_pod_chosen(pod: &Pod, account: &Account, origin: &str, old: Option<&str>, why: &Switch) -> Mail {
    let host = host_of(origin);
    let fingerprint = crate::backup::push::AccountKey::from_pem(&account.public_key_pem)
        .map(|k| k.fingerprint().short())
        .unwrap_or_default();
    let (subject, opening) = match (why, old) {
        (Switch::Moved(reason), Some(old)) => (
            format!("Your encrypted backup moved to {host}"),
            format!(
                "the encrypted backup of your account {id} has moved from {old} to {host}, because {reason}. {old} is asked to delete the copy it holds once {host} has yours.",
                id = diaspora_id(pod, account),
                old = host_of(old),
            ),
        ),
        (Switch::UserChoice, _) => (
            format!("Your encrypted backup is now kept at {host}"),
            format!(
                "as you chose, the encrypted backup of your account {id} is now kept at {host}.{left}",
                id = diaspora_id(pod, account),
                left = old
                    .map(|o| format!(" {} is asked to delete the copy it holds once {host} has yours.", host_of(o)))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            format!("Your encrypted backup is kept at {host}"),
            format!(
                "an encrypted backup of your account {id} is now kept at {host}, and kept current as your account changes.",
                id = diaspora_id(pod, account)
            ),
        ),
    };
    Mail::new(
        account.email.clone(),
        subject,
        format!(
            "Hello {user},\n\n{opening}\n\nIf {home} ever disappears, restore your account at\n\n  {origin}/restore_backup\n\nwith this email address ({email}) and your backup pass phrase.\n\n{KEEP_SAFE}\n\n{host} will also write to you, asking you to confirm that this backup is yours: please confirm it. Its message shows the key fingerprint {fingerprint}, as do your settings here.\n\nYour settings show how your backup is doing, and let you choose another backup pod: {url}/settings#backup-pod\n",
            user = account.username,
            home = pod.config.public_host(),
            email = account.email,
            url = pod.config.public_url(),
        ),
    )
}

pub(super) fn mail_restored(pod: &Pod, account: &Account, origin: &str) -> Mail {
    Mail::new(
        account.email.clone(),
        format!("Your account was restored on {}", host_of(origin)),
        format!(
            "Hello {user},\n\n{host}, which kept the encrypted backup of your account {id}, says that this backup has been restored: your account now lives on elsewhere, restored by someone who had your email and your backup pass phrase.\n\nIf that was you, there is nothing to do. If it was not, sign in at {url}/settings, change your backup pass phrase and choose another backup pod, and tell the podmin of {host}.\n\nBackups of this account are paused until you choose a backup pod again.\n",
            user = account.username,
            host = host_of(origin),
            id = diaspora_id(pod, account),
            url = pod.config.public_url(),
        ),
    )
}

pub(super) fn mail_failing(pod: &Pod, account: &Account, state: &SyncState, since: u64) -> Mail {
    let detail = match (&state.pod, &state.last_error) {
        (None, _) => "No backup pod is available at the moment; one is chosen as soon as one appears.".to_string(),
        (Some(origin), Some(error)) => format!(
            "Your backup pod is {}. The last error was: {}",
            host_of(origin),
            error.text
        ),
        (Some(origin), None) => format!("Your backup pod is {}.", host_of(origin)),
    };
    Mail::new(
        account.email.clone(),
        "Your encrypted backup is not up to date".to_string(),
        format!(
            "Hello {user},\n\nthe encrypted backup of your account {id} has not been updated since {since}. {detail}\n\nlifeboat keeps trying, and moves your backup to another pod if this one keeps failing. You can choose another backup pod yourself in your settings: {url}/settings#backup-pod\n\n{KEEP_SAFE}\n",
            user = account.username,
            id = diaspora_id(pod, account),
            since = utc(since),
            url = pod.config.public_url(),
        ),
    )
}
