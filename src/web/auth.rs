//! The access token: random, printed with the URL (as Jupyter does), required on every
//! request, since the page opens root shells in the lab's nodes. It is taken from the query
//! (`?token=...`), from the cookie the page sets from it, or from an `Authorization: token ...`
//! header.

use crate::error::{Error, Result};
use std::io::Read;

/// Name of the cookie that carries the token.
pub const COOKIE: &str = "tcplab_token";

/// A secret of 128 random bits, written in hex.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A new random token (from the kernel's random source).
    pub fn generate() -> Result<Token> {
        let mut b = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .map_err(|e| Error::io("reading /dev/urandom for the access token", e))?;
        Ok(Token(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    /// A token of the given text (tests, or a token chosen by the user).
    pub fn from_text(s: &str) -> Token {
        Token(s.to_string())
    }

    /// The token's text, for the URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is the token; compares in constant time.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() || a.is_empty() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Whether a request carries the token: in its query string, its `Cookie` header or its
    /// `Authorization` header (each as given, `None` when absent).
    pub fn admits(&self, query: Option<&str>, cookie: Option<&str>, authz: Option<&str>) -> bool {
        let in_query = query.is_some_and(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k == "token" && self.matches(v))
        });
        let in_cookie = cookie.is_some_and(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .any(|(k, v)| k == COOKIE && self.matches(v))
        });
        let in_header = authz
            .and_then(|a| a.strip_prefix("token "))
            .is_some_and(|t| self.matches(t.trim()));
        in_query || in_cookie || in_header
    }
}
