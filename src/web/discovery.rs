//! Discovery of local people, exactly as diaspora* reads it: WebFinger
//! (`/.well-known/webfinger`), the hCard (`/hcard/users/GUID`), the person's page
//! (`/people/GUID`, `/u/USERNAME`) and the uploaded avatar (`/avatars/GUID`). Unknown
//! and closed accounts answer 404 (so does a WebFinger resource that names no
//! `user@host`), except the person page of a moved account, which says where it went,
//! and a closed account's avatar for 30 days after closing.

use maud::html;
use warp::http::{header, HeaderValue, StatusCode};

use super::{html_status, json, see_other, Request, Response};
use crate::account::{profile, Account, AccountStore};
use crate::federation::discovery::{render_hcard, render_jrd, HcardPerson, JRD_CONTENT_TYPE};
use crate::federation::signature::public_key_from_pem;
use crate::pod::Pod;
use crate::{Error, Result};

fn not_found() -> Error {
    Error::NotFound("no such person on this pod".into())
}

/// The open account a `acct:user@host` resource names.
fn account_for_resource(pod: &Pod, resource: &str) -> Result<Account> {
    let id = resource
        .strip_prefix("acct:")
        .unwrap_or(resource)
        .trim()
        .to_ascii_lowercase();
    // Not an account at all (a URL, a bare name): nobody here, as diaspora* answers.
    let (user, host) = id.split_once('@').ok_or_else(not_found)?;
    if host != pod.config.public_host() {
        return Err(not_found());
    }
    match AccountStore::account(&pod.store, user)? {
        Some(account) if account.closed.is_none() => Ok(account),
        _ => Err(not_found()),
    }
}

pub fn webfinger(pod: &Pod, req: &Request) -> Result<Response> {
    let resource = req
        .query_param("resource")
        .ok_or_else(|| Error::bad("the resource parameter is missing"))?;
    let account = account_for_resource(pod, &resource)?;
    let base = pod.config.public_url();
    let jrd = render_jrd(&account.diaspora_id(&pod.config.public_host()), &base, &account.guid);
    let mut response = json(StatusCode::OK, &jrd);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JRD_CONTENT_TYPE));
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    Ok(response)
}

fn open_by_guid(pod: &Pod, guid: &str) -> Result<Account> {
    match AccountStore::account_by_guid(&pod.store, guid)? {
        Some(account) if account.closed.is_none() => Ok(account),
        _ => Err(not_found()),
    }
}

pub fn hcard(pod: &Pod, guid: &str) -> Result<Response> {
    let account = open_by_guid(pod, guid)?;
    let base = pod.config.public_url();
    let (large, medium, small) = profile::photo_urls(&account, &base);
    let person = HcardPerson {
        guid: account.guid.clone(),
        nickname: Some(account.username.clone()),
        full_name: account.display_name(),
        first_name: account.profile.first_name.clone().unwrap_or_default(),
        last_name: account.profile.last_name.clone().unwrap_or_default(),
        public_key: public_key_from_pem(&account.public_key_pem)?,
        photo_large_url: large,
        photo_medium_url: medium,
        photo_small_url: small,
        searchable: account.profile.searchable,
    };
    let mut response = Response::new(bytes::Bytes::from(render_hcard(&person)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(response)
}

pub fn person_page(pod: &Pod, guid: &str) -> Result<Response> {
    let account = AccountStore::account_by_guid(&pod.store, guid)?.ok_or_else(not_found)?;
    let host = pod.config.public_host();
    if let Some(closed) = &account.closed {
        let body = html! {
            h1 { (account.diaspora_id(&host)) }
            @match &closed.moved_to {
                Some(new_id) => p.notice { "This account has moved to " strong { (new_id) } "." },
                None => p.notice { "This account is closed." },
            }
        };
        return Ok(html_status(
            StatusCode::GONE,
            super::layout::layout("Account moved or closed", body),
        ));
    }
    let base = pod.config.public_url();
    let (large, _, _) = profile::photo_urls(&account, &base);
    let p = &account.profile;
    let body = html! {
        div.card {
            img.avatar src=(large) alt="";
            h1 { (account.display_name()) }
            p { code { (account.diaspora_id(&host)) } }
            @if p.public {
                @if let Some(bio) = &p.bio { p { (bio) } }
                @if let Some(location) = &p.location { p { "Location: " (location) } }
            }
            @if let Some(tags) = &p.tag_string { p.hint { (tags) } }
        }
    };
    Ok(html_status(
        StatusCode::OK,
        super::layout::layout(&account.display_name(), body),
    ))
}

pub fn profile_by_username(pod: &Pod, username: &str) -> Result<Response> {
    let account = AccountStore::account(&pod.store, username)?.ok_or_else(not_found)?;
    see_other(&format!("/people/{}", account.guid))
}

/// The uploaded avatar; a closed account's for 30 days after closing, so that the
/// `image_url`s other pods and exported archives hold keep working meanwhile.
pub fn avatar(pod: &Pod, guid: &str) -> Result<Response> {
    let account = AccountStore::account_by_guid(&pod.store, guid)?.ok_or_else(not_found)?;
    if account
        .closed
        .as_ref()
        .is_some_and(|closed| !closed.keeps_avatar(crate::account::now_unix()))
    {
        return Err(not_found());
    }
    let avatar = account
        .avatar
        .ok_or_else(|| Error::NotFound("this person has no uploaded picture".into()))?;
    let mut response = Response::new(bytes::Bytes::from(avatar.data));
    let content_type = HeaderValue::from_str(&avatar.content_type).map_err(Error::internal)?;
    response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}
