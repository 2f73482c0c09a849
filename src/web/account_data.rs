//! Pages for what an account holds: the profile (with the avatar upload), aspects,
//! contacts, followed tags and blocks. Each POST checks CSRF, changes the account in
//! one unit of work through [`crate::account::update`] (contacts through
//! [`crate::sharing`], which also tells the person), and redirects back.

use maud::html;
use warp::http::StatusCode;

use super::forms::{self, Form};
use super::layout::notice_for;
use super::layout::{csrf_field_for, error_box, page, require};
use super::HttpStatus;
use super::{see_other, Request, Response};
use crate::account::{self, profile, Account};
use crate::pod::Pod;
use crate::sharing;
use crate::{Error, Result};

/// The largest form accepted here (an avatar upload plus the fields).
const FORM_LIMIT: u64 = 640 * 1024;

macro_rules! signed_in {
    ($pod:expr, $req:expr) => {
        proceed!(require($pod, $req)?)
    };
}

async fn read_form(pod: &Pod, req: &mut Request) -> Result<std::result::Result<(Account, Form), Response>> {
    let form = forms::read(req, FORM_LIMIT).await?;
    Ok(require(pod, req)?.map(|account| (account, form)))
}

macro_rules! posted {
    ($pod:expr, $req:expr) => {
        proceed!(read_form($pod, $req).await?)
    };
}

/// What the pages of this module are drawn from.
#[derive(Clone, Copy)]
struct Seen<'a> {
    pod: &'a Pod,
    req: &'a Request,
    account: &'a Account,
}

impl<'a> Seen<'a> {
    fn of(pod: &'a Pod, req: &'a Request, account: &'a Account) -> Self {
        Seen { pod, req, account }
    }
}

type Render = fn(Seen, StatusCode, Option<&str>) -> Result<Response>;

/// Shows a page again with the error, for mistakes the user can fix.
fn or_show<T>(result: Result<T>, render: Render, seen: Seen) -> Result<std::result::Result<T, Response>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(
            e @ (Error::BadRequest(_)
            | Error::Conflict(_)
            | Error::TooLarge(_)
            | Error::Upstream(_)
            | Error::NotFound(_)),
        ) => Ok(Err(render(seen, e.status(), Some(&e.client_message()))?)),
        Err(e) => Err(e),
    }
}

/// A GET of one of this module's pages: /profile, /aspects, /contacts, /tags, /blocks.
pub async fn show(pod: &Pod, req: &Request) -> Result<Response> {
    let render: Render = match req.path.trim_start_matches('/') {
        "profile" => render_profile,
        "aspects" => render_aspects,
        "contacts" => render_contacts,
        _ => render_list,
    };
    let account = signed_in!(pod, req);
    render(Seen::of(pod, req, &account), StatusCode::OK, None)
}

// ----- profile -----

fn render_profile(seen: Seen, status: StatusCode, error: Option<&str>) -> Result<Response> {
    let Seen { pod, req, account } = seen;
    let p = &account.profile;
    let (large, _, _) = profile::photo_urls(account, &pod.config.public_url());
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        h1 { "Your profile" }
        (notice_for(req.query_param("done").as_deref()))
        (error_box(error))
        p { "Other pods see this profile as " code { (account.diaspora_id(&pod.config.public_host())) } ". "
            a href=(format!("/people/{}", account.guid)) { "See your public page" } "." }
        form.stack method="post" action="/profile" enctype="multipart/form-data" {
            (csrf_field_for(pod, req))
            img.avatar src=(large) alt="Your picture";
            label for="avatar" { "Picture" }
            input #avatar type="file" name="avatar" accept="image/png,image/jpeg,image/gif,image/webp";
            p.hint { "PNG, JPEG, GIF or WebP, at most 512 KiB." }
            @if account.avatar.is_some() {
                label { input type="checkbox" name="remove_avatar"; " Remove the current picture" }
            }
            label for="first_name" { "First name" }
            input #first_name type="text" name="first_name" value=(text(&p.first_name)) maxlength="32";
            label for="last_name" { "Last name" }
            input #last_name type="text" name="last_name" value=(text(&p.last_name)) maxlength="32";
            label for="bio" { "About you" }
            textarea #bio name="bio" rows="4" { (text(&p.bio)) }
            label for="location" { "Location" }
            input #location type="text" name="location" value=(text(&p.location)) maxlength="255";
            label for="gender" { "Gender" }
            input #gender type="text" name="gender" value=(text(&p.gender)) maxlength="255";
            label for="birthday" { "Birthday" }
            input #birthday type="date" name="birthday" value=(text(&p.birthday));
            label for="tag_string" { "Describe yourself in up to 5 #tags" }
            input #tag_string type="text" name="tag_string" value=(text(&p.tag_string));
            label { input type="checkbox" name="searchable" checked[p.searchable]; " Let people find me by name" }
            label { input type="checkbox" name="public" checked[p.public]; " Show my extended profile (about, location, gender, birthday) to everyone" }
            label { input type="checkbox" name="nsfw" checked[p.nsfw]; " My content is not safe for work" }
            button type="submit" { "Save profile" }
        }
    };
    Ok(page(pod, req, status, Some(account), "Your profile", body))
}

pub async fn save_profile(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    let mut data = account.profile.clone();
    data.first_name = form.optional("first_name");
    data.last_name = form.optional("last_name");
    data.bio = form.optional("bio");
    data.location = form.optional("location");
    data.gender = form.optional("gender");
    data.birthday = form.optional("birthday");
    data.tag_string = form.optional("tag_string");
    data.searchable = form.checked("searchable");
    data.public = form.checked("public");
    data.nsfw = form.checked("nsfw");
    data.edited_at = Some(crate::federation::entities::format_timestamp(
        time::OffsetDateTime::now_utc(),
    ));
    let author = account.diaspora_id(&pod.config.public_host());
    let avatar = match form.file("avatar") {
        Some(upload) => Some(profile::check_avatar(&upload.data)),
        None => None,
    };
    let checked = profile::validate(&data, &author).and_then(|()| avatar.transpose());
    let avatar = proceed!(or_show(checked, render_profile, Seen::of(pod, req, &account))?);
    let remove = form.checked("remove_avatar");
    account::update(pod, &account.username, |a| {
        a.profile = data.clone();
        if let Some(avatar) = &avatar {
            a.avatar = Some(avatar.clone());
        } else if remove {
            a.avatar = None;
        }
        Ok(())
    })
    .await?;
    see_other("/profile?done=saved")
}

// ----- aspects -----

fn render_aspects(seen: Seen, status: StatusCode, error: Option<&str>) -> Result<Response> {
    let Seen { pod, req, account } = seen;
    let body = html! {
        h1 { "Aspects" }
        p.lead { "Aspects group your contacts, as on any diaspora* pod." }
        (notice_for(req.query_param("done").as_deref()))
        (error_box(error))
        table {
            thead { tr { th { "Aspect" } th { "Contacts" } th {} } }
            tbody {
                @for aspect in &account.aspects {
                    tr {
                        td { (aspect) }
                        td { (account.contacts.iter().filter(|c| c.aspects.contains(aspect)).count()) }
                        td {
                            form.inline method="post" action="/aspects/delete" {
                                (csrf_field_for(pod, req))
                                input type="hidden" name="name" value=(aspect);
                                button.secondary type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        form.stack method="post" action="/aspects" {
            (csrf_field_for(pod, req))
            label for="aspect_name" { "New aspect" }
            input #aspect_name type="text" name="name" required maxlength=(profile::MAX_ASPECT_CHARS) aria-describedby="aspect_name_hint";
            p.hint #aspect_name_hint { "At most " (profile::MAX_ASPECT_CHARS) " characters. Deleting an aspect stops sharing with the contacts who are in no other." }
            button type="submit" { "Add aspect" }
        }
    };
    Ok(page(pod, req, status, Some(account), "Aspects", body))
}

pub async fn add_aspect(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    let checked = profile::check_aspect_name(form.text("name")).and_then(|name| {
        if account.aspects.iter().any(|a| profile::same_aspect_name(a, &name)) {
            Err(Error::Conflict(format!("you have an aspect named {name:?} already")))
        } else if account.aspects.len() >= profile::MAX_ASPECTS {
            Err(Error::bad(format!("at most {} aspects", profile::MAX_ASPECTS)))
        } else {
            Ok(name)
        }
    });
    let name = proceed!(or_show(checked, render_aspects, Seen::of(pod, req, &account))?);
    account::update(pod, &account.username, |a| {
        if !a.aspects.iter().any(|x| profile::same_aspect_name(x, &name)) {
            a.aspects.push(name.clone());
        }
        Ok(())
    })
    .await?;
    see_other("/aspects?done=saved")
}

pub async fn delete_aspect(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    sharing::delete_aspect(pod, &account, form.text("name")).await?;
    see_other("/aspects?done=saved")
}

// ----- contacts -----

fn render_contacts(seen: Seen, status: StatusCode, error: Option<&str>) -> Result<Response> {
    let Seen { pod, req, account } = seen;
    let body = html! {
        h1 { "Contacts" }
        (notice_for(req.query_param("done").as_deref()))
        (error_box(error))
        form.stack method="post" action="/contacts" {
            (csrf_field_for(pod, req))
            label for="diaspora_id" { "Add a person by their diaspora* ID" }
            input #diaspora_id type="text" name="diaspora_id" required placeholder="alice@pod.example.org";
            @if account.aspects.is_empty() {
                p.hint { "You share with the people in your aspects: " a href="/aspects" { "make an aspect" } " first." }
            } @else {
                label for="aspect" { "Into the aspect" }
                select #aspect name="aspect" {
                    @for aspect in &account.aspects { option value=(aspect) { (aspect) } }
                }
            }
            button type="submit" { "Add contact" }
        }
        @if account.contacts.is_empty() {
            p { "No contacts yet." }
        } @else {
            p.hint { "People who share with you are listed too; put them into an aspect to share back." }
            table {
                thead { tr { th { "Person" } th { "Sharing" } th { "Aspects" } th {} } }
                tbody {
                    @for contact in &account.contacts {
                        tr.contact {
                            td {
                                strong.contact-name { (contact.person_name.clone().unwrap_or_else(|| contact.diaspora_id.clone())) }
                                br; code.contact-id { (contact.diaspora_id) }
                                @if let Ok(Some(old)) = crate::arrivals::received::contact_moved_from(pod, &account.username, &contact.diaspora_id) {
                                    br; span.moved-notice { "moved from " (old) }
                                }
                            }
                            td {
                                @if contact.mutual() { "mutual" }
                                @else if contact.sharing { "shares with you" }
                                @else if contact.receiving { "you share" }
                                @else { "—" }
                            }
                            td {
                                form method="post" action="/contacts/aspects" {
                                    (csrf_field_for(pod, req))
                                    input type="hidden" name="diaspora_id" value=(contact.diaspora_id);
                                    @for aspect in &account.aspects {
                                        label {
                                            input type="checkbox" name=(format!("aspect:{aspect}")) checked[contact.aspects.contains(aspect)];
                                            " " (aspect)
                                        }
                                        " "
                                    }
                                    button.secondary type="submit" { "Save aspects" }
                                }
                            }
                            td {
                                form.inline method="post" action="/contacts/remove" {
                                    (csrf_field_for(pod, req))
                                    input type="hidden" name="diaspora_id" value=(contact.diaspora_id);
                                    button.secondary type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(pod, req, status, Some(account), "Contacts", body))
}

pub async fn add_contact(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    let aspect = Some(form.text("aspect")).filter(|a| !a.is_empty());
    let added = sharing::add_contact(pod, &account, form.text("diaspora_id"), aspect).await;
    proceed!(or_show(added, render_contacts, Seen::of(pod, req, &account))?);
    see_other("/contacts?done=contact_added")
}

pub async fn contact_aspects(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    let id = form.text("diaspora_id").to_string();
    let chosen: Vec<String> = account
        .aspects
        .iter()
        .filter(|a| form.checked(&format!("aspect:{a}")))
        .cloned()
        .collect();
    let saved = sharing::set_aspects(pod, &account, &id, chosen).await;
    proceed!(or_show(saved, render_contacts, Seen::of(pod, req, &account))?);
    see_other("/contacts?done=saved")
}

pub async fn remove_contact(pod: &Pod, req: &mut Request) -> Result<Response> {
    let (account, form) = posted!(pod, req);
    let id = form.text("diaspora_id").to_string();
    sharing::remove_contact(pod, &account, &id).await?;
    see_other("/contacts?done=contact_removed")
}

// ----- followed tags and blocks: lists of words -----

/// A list page (followed tags, blocks): shared shape, different rules.
struct ListPage {
    path: &'static str,
    title: &'static str,
    intro: &'static str,
    field_label: &'static str,
    placeholder: &'static str,
    items: fn(&Account) -> &Vec<String>,
    items_mut: fn(&mut Account) -> &mut Vec<String>,
    check: fn(&str) -> Result<String>,
    limit: usize,
}

const TAGS: ListPage = ListPage {
    path: "/tags",
    title: "Followed tags",
    intro: "Tags you follow travel with your account when it moves.",
    field_label: "Follow a tag",
    placeholder: "#photography",
    items: |a| &a.followed_tags,
    items_mut: |a| &mut a.followed_tags,
    check: profile::check_tag,
    limit: profile::MAX_TAGS,
};

const BLOCKS: ListPage = ListPage {
    path: "/blocks",
    title: "Blocked people",
    intro: "People you block cannot reach you; the list travels with your account.",
    field_label: "Block a person by their diaspora* ID",
    placeholder: "troll@pod.example.org",
    items: |a| &a.blocks,
    items_mut: |a| &mut a.blocks,
    check: profile::check_diaspora_id,
    limit: 10_000,
};

fn render_list(seen: Seen, status: StatusCode, error: Option<&str>) -> Result<Response> {
    let Seen { pod, req, account } = seen;
    let list = list_for(&req.path);
    let body = html! {
        h1 { (list.title) }
        p.lead { (list.intro) }
        (notice_for(req.query_param("done").as_deref()))
        (error_box(error))
        form.stack method="post" action=(list.path) {
            (csrf_field_for(pod, req))
            label for="item" { (list.field_label) }
            input #item type="text" name="item" required placeholder=(list.placeholder);
            button type="submit" { "Add" }
        }
        ul.items {
            @for item in (list.items)(account) {
                li {
                    span.item { (item) } " "
                    form.inline method="post" action=(format!("{}/remove", list.path)) {
                        (csrf_field_for(pod, req))
                        input type="hidden" name="item" value=(item);
                        button.secondary type="submit" { "Remove" }
                    }
                }
            }
        }
    };
    Ok(page(pod, req, status, Some(account), list.title, body))
}

fn list_for(path: &str) -> &'static ListPage {
    if path.starts_with("/tags") {
        &TAGS
    } else {
        &BLOCKS
    }
}

pub async fn list_add(pod: &Pod, req: &mut Request) -> Result<Response> {
    let list = list_for(&req.path);
    let (account, form) = posted!(pod, req);
    let checked = (list.check)(form.text("item")).and_then(|item| {
        if (list.items)(&account).len() >= list.limit {
            Err(Error::bad(format!("at most {} entries", list.limit)))
        } else {
            Ok(item)
        }
    });
    let item = proceed!(or_show(checked, render_list, Seen::of(pod, req, &account))?);
    account::update(pod, &account.username, |a| {
        let items = (list.items_mut)(a);
        if !items.contains(&item) {
            items.push(item.clone());
        }
        Ok(())
    })
    .await?;
    see_other(&format!("{}?done=saved", list.path))
}

pub async fn list_remove(pod: &Pod, req: &mut Request) -> Result<Response> {
    let list = list_for(&req.path);
    let (account, form) = posted!(pod, req);
    let item = form.text("item").to_string();
    account::update(pod, &account.username, |a| {
        (list.items_mut)(a).retain(|x| x != &item);
        Ok(())
    })
    .await?;
    see_other(&format!("{}?done=saved", list.path))
}
