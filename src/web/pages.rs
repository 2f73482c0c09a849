//! The page layout shared by every HTML page, the front page, error pages and the
//! embedded static assets (CSS, default avatar). Pages work without JavaScript.

use maud::{html, Markup, DOCTYPE};
use rust_embed::RustEmbed;
use warp::http::{header, HeaderValue, StatusCode};

use super::Response;
use crate::account::Account;
use crate::pod::Pod;
use crate::{Error, Result};

/// Files under `assets/`, compiled into the binary.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// Serves one embedded asset with a long cache lifetime.
pub fn asset(name: &str) -> Result<Response> {
    let file = Assets::get(name).ok_or_else(|| Error::NotFound(format!("no asset {name}")))?;
    let content_type = match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    let mut response = Response::new(bytes::Bytes::from(file.data.into_owned()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    Ok(response)
}

/// The frame of a page for someone not signed in.
pub fn layout(title: &str, body: Markup) -> Markup {
    layout_for(None, title, body)
}

/// The frame of every page; the navigation depends on who is signed in (the account
/// and the page's CSRF token, for the sign-out button).
pub fn layout_for(user: Option<(&Account, &str)>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lifeboat" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.site {
                    a.brand href="/" { "lifeboat" }
                    nav {
                        @if let Some((_, csrf)) = user {
                            a href="/profile" { "Profile" }
                            a href="/aspects" { "Aspects" }
                            a href="/contacts" { "Contacts" }
                            a href="/tags" { "Tags" }
                            a href="/blocks" { "Blocks" }
                            a href="/settings" { "Settings" }
                            form.inline method="post" action="/users/sign_out" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/users/sign_in" { "Sign in" }
                        }
                    }
                }
                main { (body) }
                footer.site {
                    p { "lifeboat " (env!("CARGO_PKG_VERSION")) " — keeps diaspora* accounts afloat." }
                }
            }
        }
    }
}

/// The front page.
pub fn home(pod: &Pod) -> Markup {
    let backups = pod.config.backups.allow_backups_and_migration;
    layout(
        "Welcome",
        html! {
            h1 { "lifeboat on " (pod.config.public_host()) }
            p.lead { "This pod keeps diaspora* accounts safe: each account's encrypted backup lives on another pod, so it can be brought back if this one ever disappears, and accounts can move between pods." }
            @if backups {
                section.card {
                    h2 { "Lost your pod?" }
                    p { "This pod holds encrypted backups for other pods. If your pod is gone, you can bring your account back here." }
                    p { a.button href="/restore_backup" { "Restore my account" } }
                }
            }
            @if crate::arrivals::restore::accepts_move_ins(&pod.config) {
                section.card {
                    h2 { "Moving from another pod?" }
                    p { "Bring your diaspora* account here from the pod you are leaving: your profile, aspects, contacts, followed tags and blocks come along, and the pods that knew you are told." }
                    p { a.button href="/move_in" { "Moving from another pod" } }
                }
            }
        },
    )
}

/// A page explaining an error in plain words.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            h1 { (status.canonical_reason().unwrap_or("Error")) }
            p { (message) }
            p { a href="/" { "Back to the front page" } }
        },
    )
}

/// A confirmation shown after a redirect (`?done=...`), from a fixed list so that a
/// link cannot put arbitrary text on the page.
pub fn notice_for(done: Option<&str>) -> Markup {
    let text = match done {
        Some("signed_up") => {
            "Welcome! Your account is ready. We have sent you an email: open its link to confirm your address."
        }
        Some("email_sent") => "We have sent a link to the new address. It takes effect when you open it.",
        Some("password_changed") => "Your password is changed.",
        Some("saved") => "Saved.",
        Some("move_cancelled") => {
            "The move is cancelled: this account stays open. Consider changing your password and backup pass phrase."
        }
        Some("retrying") => "Sending again now.",
        Some("passphrase_set") => "Your backup pass phrase is set. Keep it safe: only it opens your backup.",
        Some("backups_off") => "Encrypted backups are off.",
        Some("contact_added") => "Contact added.",
        Some("contact_removed") => "Contact removed.",
        _ => return html! {},
    };
    html! { p.notice.ok role="status" { (text) } }
}
