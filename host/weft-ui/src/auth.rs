//! The dashboard's token: 32 random bytes from the OS, hex, made at boot.
//!
//! A request carries it as `Authorization: Bearer TOKEN`, `X-Weft-Token:
//! TOKEN`, the `weft_ui` cookie (set, HttpOnly and SameSite=Strict, when
//! the page is opened with `?token=`) or, for reads only, `?token=`.
//! Mutations need it in a header: a cookie alone (which a browser would
//! attach to a forged request) is not enough. Compared in constant time.

use axum::http::{header, HeaderMap, Uri};
use subtle::ConstantTimeEq;

/// The cookie the page's session rides on.
pub const COOKIE: &str = "weft_ui";
/// The header mutations must carry (or `Authorization: Bearer`).
pub const HEADER: &str = "x-weft-token";

/// A fresh token: 32 bytes from the OS RNG, as 64 hex characters.
pub fn new_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(std::io::Error::other)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Equal, in time that does not depend on where they differ.
pub fn same(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer` or `X-Weft-Token`.
    Header,
    /// The session cookie.
    Cookie,
    /// `?token=`.
    Query,
}

/// The token a header carries, if any.
fn from_header(h: &HeaderMap) -> Option<&str> {
    if let Some(v) = h.get(HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The session cookie's value, if any.
fn from_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// `?token=` in a URI, if any.
pub fn from_query(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

/// Which of the request's credentials matches `token` (header first).
/// `None`: none does, or none was given.
pub fn check(h: &HeaderMap, uri: &Uri, token: &str) -> Option<Via> {
    let candidates = [
        (from_header(h), Via::Header),
        (from_cookie(h), Via::Cookie),
        (from_query(uri), Via::Query),
    ];
    candidates
        .into_iter()
        .find_map(|(given, via)| given.filter(|g| same(g, token)).map(|_| via))
}

/// The `Set-Cookie` value that keeps the session for the page.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_64_hex_and_fresh() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn each_carrier_is_recognised_and_wrong_ones_are_not() {
        let t = "ab".repeat(32);
        let none: Uri = "/api/snapshot".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(check(&h, &none, &t), None);
        h.insert(HEADER, HeaderValue::from_str(&t).unwrap());
        assert_eq!(check(&h, &none, &t), Some(Via::Header));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        assert_eq!(check(&h, &none, &t), Some(Via::Header));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={t}")).unwrap(),
        );
        assert_eq!(check(&h, &none, &t), Some(Via::Cookie));
        let q: Uri = format!("/api/snapshot?x=1&token={t}").parse().unwrap();
        assert_eq!(check(&HeaderMap::new(), &q, &t), Some(Via::Query));
        let wrong: Uri = format!("/?token={}", "cd".repeat(32)).parse().unwrap();
        assert_eq!(check(&HeaderMap::new(), &wrong, &t), None);
        let short: Uri = "/?token=ab".parse().unwrap();
        assert_eq!(check(&HeaderMap::new(), &short, &t), None);
    }
}
