//! What HTML forms share: reading a url-encoded or multipart body, cookies, the CSRF
//! token, and who is signed in.
//!
//! CSRF: every page with a form gets a random `lb_csrf` cookie (HttpOnly,
//! SameSite=Strict) and repeats its value in a hidden field; a POST is accepted only
//! when the two match. A cross-site page can neither read the cookie nor make the
//! browser send it.

use std::collections::HashMap;

use warp::http::{header, HeaderValue};

use super::{Request, Response};
use crate::account::{session, Account};
use crate::pod::Pod;
use crate::{Error, Result};

/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "lb_csrf";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "lb_session";

/// A submitted form: text fields and uploaded files.
#[derive(Default)]
pub struct Form {
    fields: HashMap<String, String>,
    files: HashMap<String, Upload>,
}

/// An uploaded file.
pub struct Upload {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Form {
    /// A field's value, or "".
    pub fn text(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    /// A field's trimmed value, or None when empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        let value = self.text(name).trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    /// An uploaded file, when one was chosen.
    pub fn file(&self, name: &str) -> Option<&Upload> {
        self.files
            .get(name)
            .filter(|f| !f.data.is_empty() || f.filename.as_deref().is_some_and(|n| !n.is_empty()))
    }
}

/// Reads a form body (url-encoded or multipart) of at most `limit` bytes and checks
/// its CSRF token.
pub async fn read(req: &mut Request, limit: u64) -> Result<Form> {
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req.body(limit).await?;
    let form = decode(&content_type, body).await?;
    let expected = cookie(req, CSRF_COOKIE).ok_or_else(|| Error::Forbidden(csrf_message()))?;
    if !constant_time_eq(expected.as_bytes(), form.text("csrf").as_bytes()) {
        return Err(Error::Forbidden(csrf_message()));
    }
    Ok(form)
}

/// Decodes a form body of the given `Content-Type` (url-encoded or multipart); the
/// CSRF token is not checked here.
pub async fn decode(content_type: &str, body: bytes::Bytes) -> Result<Form> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        Ok(Form {
            fields: super::form_pairs(&body).into_iter().collect(),
            files: HashMap::new(),
        })
    } else if content_type.starts_with("multipart/form-data") {
        let boundary =
            multer::parse_boundary(content_type).map_err(|_| Error::bad("the form's multipart boundary is missing"))?;
        parse_multipart(body, boundary).await
    } else {
        Err(Error::bad("expected a form submission"))
    }
}

fn csrf_message() -> String {
    "this form has expired or came from another site; reload the page and try again".into()
}

async fn parse_multipart(body: bytes::Bytes, boundary: String) -> Result<Form> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| Error::bad(format!("unreadable form: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(|m| m.to_string());
        let mut data = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| Error::bad(format!("unreadable form: {e}")))?
        {
            data.extend_from_slice(&chunk);
        }
        if filename.is_some() {
            form.files.insert(
                name,
                Upload {
                    filename,
                    content_type,
                    data,
                },
            );
        } else {
            form.fields.insert(
                name,
                String::from_utf8(data).map_err(|_| Error::bad("a form field is not UTF-8 text"))?,
            );
        }
    }
    Ok(form)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie sent by the browser.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// A `Set-Cookie` value: HttpOnly, `SameSite`, path `/`, `Secure` on https pods.
pub fn set_cookie(pod: &Pod, name: &str, value: &str, max_age_secs: Option<u64>, same_site: &str) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age_secs {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if pod.config.is_https() {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The CSRF token for the forms of a page, and the cookie to set when the browser has
/// none yet.
pub fn csrf(pod: &Pod, req: &Request) -> (String, Option<String>) {
    match cookie(req, CSRF_COOKIE).filter(|v| v.len() == 43) {
        Some(token) => (token, None),
        None => {
            let token = req
                .fresh_csrf
                .get_or_init(crate::account::credentials::random_token)
                .clone();
            let set = set_cookie(pod, CSRF_COOKIE, &token, None, "Strict");
            (token, Some(set))
        }
    }
}

/// Adds a `Set-Cookie` header.
pub fn with_cookie(mut response: Response, set_cookie: Option<String>) -> Response {
    if let Some(value) = set_cookie.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The signed-in account, if any.
pub fn signed_in(pod: &Pod, req: &Request) -> Result<Option<Account>> {
    match cookie(req, SESSION_COOKIE) {
        Some(id) => session::account(pod, &id),
        None => Ok(None),
    }
}
