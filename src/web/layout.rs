//! The frame every HTML page shares: the page shell with its navigation, the CSRF
//! field, the error box, the notice a redirect's `done` parameter shows, and the
//! signed-in guard. Defined once; every page module uses these and no page module
//! imports another.

use maud::{html, Markup, DOCTYPE};
use warp::http::StatusCode;

use super::forms;
use super::{html_status, see_other, Request, Response};
use crate::account::Account;
use crate::pod::Pod;
use crate::Result;

/// The hidden CSRF field of a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A page's CSRF field for this request's token.
pub fn csrf_field_for(pod: &Pod, req: &Request) -> Markup {
    let (token, _) = forms::csrf(pod, req);
    csrf_field(&token)
}

/// The error box at the top of a form, for mistakes the user can fix.
pub fn error_box(error: Option<&str>) -> Markup {
    html! { @if let Some(e) = error { p.notice.error role="alert" { (e) } } }
}

/// A page with the navigation for `user`; sets the CSRF cookie when the browser has none.
pub fn page(
    pod: &Pod,
    req: &Request,
    status: StatusCode,
    user: Option<&Account>,
    title: &str,
    body: Markup,
) -> Response {
    let (csrf, set) = forms::csrf(pod, req);
    let viewer = user.map(|u| (u, csrf.as_str()));
    forms::with_cookie(html_status(status, layout_for(viewer, title, body)), set)
}

/// Redirects to sign-in when nobody is signed in.
pub fn require(pod: &Pod, req: &Request) -> Result<std::result::Result<Account, Response>> {
    match forms::signed_in(pod, req)? {
        Some(account) => Ok(Ok(account)),
        None => Ok(Err(see_other("/users/sign_in")?)),
    }
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
