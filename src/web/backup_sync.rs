//! The "Backup pod" section of the settings, and `POST /settings/backups/pod` (the
//! user picks another backup pod). Thin: reads [`crate::backup::home::overview`] and
//! hands the choice to [`crate::backup::home::choose`].

use maud::{html, Markup};

use super::accounts::{render_settings, require};
use super::{forms, see_other, Request, Response};
use crate::account::Account;
use crate::backup::home::pods::PodView;
use crate::backup::home::{self, SlotState};
use crate::pod::Pod;
use crate::{Error, Result};

fn host(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

fn vetting(view: Option<&PodView>) -> &'static str {
    match view {
        Some(v) if v.vetted => "vetted by this pod's admins",
        _ => "not vetted by this pod's admins",
    }
}

/// The section, for `render_settings`. `done` is the page's `done` parameter.
pub fn section(pod: &Pod, account: &Account, csrf: &str, done: Option<&str>) -> Markup {
    let overview = match home::overview(pod, account) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(username = %account.username, "backup overview: {e}");
            return html! { section.card #backup-pod { h2 { "Backup pod" } p.notice.error { "The state of your backup cannot be shown right now." } } };
        }
    };
    let state = &overview.state;
    html! {
        section.card #backup-pod {
            h2 { "Backup pod" }
            @if done == Some("backup_pod_chosen") {
                p.notice.ok role="status" { "Your choice is saved: your backup goes to the new pod now, and we have emailed you where it lives." }
            }
            @if let Some(since) = overview.failing_too_long {
                p.notice.error role="alert" {
                    strong { "Your backup has not succeeded since " (home::utc(since)) "." }
                    " We keep trying, and move it to another pod if this one keeps failing; you can also choose another pod below."
                }
            }
            @if let Some(why) = overview.off {
                p { "Encrypted backups are not running: " (why) "." }
                @if account.sealing_key.is_none() && !account.backups_opted_out {
                    p { a href="#backup" { "Set a backup pass phrase" } }
                }
            } @else {
                @match (&state.pod, state.slot) {
                    (_, SlotState::NoPod) | (None, _) => {
                        p.notice { "No backup pod is available right now. We pick one as soon as one appears, and email you where your backup lives." }
                    }
                    (Some(origin), slot) => {
                        p { "Your backup pod is " strong { (host(origin)) } " (" (vetting(overview.pod.as_ref())) "; "
                            @if state.chosen_by_user { "chosen by you" } @else { "chosen automatically" } ")." }
                        p { "State: "
                            @match slot {
                                SlotState::Pending => { strong { "waiting for the first backup" } " to reach " (host(origin)) "." }
                                SlotState::AwaitingConfirmation => { strong { "awaiting your confirmation" } ": " (host(origin)) " keeps your backup and has emailed you to confirm it is yours — check your email." }
                                SlotState::Stored => { strong { "stored" } "." }
                                SlotState::Restored => { strong { "restored elsewhere" } ": " (host(origin)) " says this backup was restored, so your account lives on another pod. Backups are paused; choose a pod below to start them again." }
                                _ => { "—" }
                            }
                        }
                        @if state.pod_refuses {
                            p.notice.error { strong { "Failing" } ": " (host(origin)) " no longer accepts backups. We move your backup as soon as another pod is available." }
                        } @else if let Some(since) = state.failing_since {
                            p.notice.error { strong { "Failing" } " since " (home::utc(since)) ". We retry with growing pauses." }
                        }
                        p { "If this pod ever disappears, restore your account at "
                            a href={ (origin) "/restore_backup" } { (origin) "/restore_backup" }
                            " with your email address and your backup pass phrase." }
                    }
                }
                p { "Last successful backup: "
                    @match state.last_success {
                        Some((at, sequence)) => { (home::utc(at)) " (sequence " (sequence) ")" }
                        None => { "none yet" }
                    }
                }
                @if let Some(error) = &state.last_error {
                    p { "Last error: " (home::utc(error.at_unix)) ": " (error.text) }
                }
                @if let Some(fp) = &overview.short_fingerprint {
                    p.hint { "Your account key's short fingerprint is " code { (fp) } "; the backup pod's confirmation email shows the same." }
                }
                @if !state.left_behind.is_empty() {
                    p.hint { "Asked to delete their copy: "
                        @for (i, left) in state.left_behind.iter().enumerate() {
                            @if i > 0 { ", " }
                            (host(&left.origin))
                            @if !left.armed { " (once the new pod has your backup)" }
                        }
                        "." }
                }
                @if let Some(choice) = &overview.pending_choice {
                    p.hint { "Moving your backup to " (host(choice)) "…" }
                }
                h3 { "Choose another backup pod" }
                @if overview.choices.is_empty() {
                    p { "No other backup pod is available right now." }
                } @else {
                    form.stack method="post" action="/settings/backups/pod" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="backup_pod" { "Backup pod" }
                        select #backup_pod name="pod" required {
                            @for choice in &overview.choices {
                                option value=(choice.origin) {
                                    (host(&choice.origin))
                                    @if !choice.vetted { " — not vetted by this pod's admins" }
                                }
                            }
                        }
                        p.hint { "Pods vetted by this pod's admins are chosen automatically; the others are offered too, but nobody here vouches for them. Your old pod is asked to delete its copy once the new one has your backup." }
                        button.secondary type="submit" { "Move my backup there" }
                    }
                }
                p { a href="#backup" { "Change your backup pass phrase" } " (not a move: the next backup replaces the one held) · "
                    a href="#backup" { "Stop encrypted backups" } }
            }
        }
    }
}

/// `POST /settings/backups/pod`.
pub async fn choose_pod(pod: &Pod, req: &mut Request) -> Result<Response> {
    let form = forms::read(req, pod.config.server.max_body_bytes).await?;
    let account = match require(pod, req)? {
        Ok(account) => account,
        Err(redirect) => return Ok(redirect),
    };
    match home::choose(pod, &account, form.text("pod")).await {
        Ok(_) => see_other("/settings?done=backup_pod_chosen#backup-pod"),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_))) => {
            render_settings(pod, req, &account, e.status(), Some(&e.client_message()))
        }
        Err(e) => Err(e),
    }
}
