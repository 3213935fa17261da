//! Base URLs, and URLs fit to show in logs.

use url::Url;

use crate::error::HttpError;

/// Query parameters whose values are credentials and never shown.
const SECRET_PARAMS: [&str; 9] = [
    "access_token",
    "refresh_token",
    "client_secret",
    "code",
    "assertion",
    "key",
    "token",
    "password",
    "api_key",
];

/// Checks a `base_url` or `token_url`: `https://`, or `http://` for a loopback host only (a
/// local proxy or test server), so that credentials never cross a network in clear text.
pub fn parse_base_url(text: &str) -> Result<Url, HttpError> {
    let fail = |reason: &str| HttpError::BaseUrl { url: text.to_owned(), reason: reason.to_owned() };
    let url = Url::parse(text).map_err(|e| fail(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(fail(
                "plain http:// is accepted only for loopback hosts (127.0.0.1, ::1, localhost)",
            ));
        }
        _ => return Err(fail("expected an https:// URL")),
    }
    if url.host().is_none() {
        return Err(fail("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail("credentials do not belong in a URL"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The URL with credential query values replaced by `***`.
pub fn redact(url: &Url) -> String {
    if url.query().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
            (k.into_owned(), if secret { "***".to_owned() } else { v.into_owned() })
        })
        .collect();
    shown.query_pairs_mut().clear().extend_pairs(pairs);
    shown.to_string()
}

/// True when `url` is served by the same scheme, host and port as `base`: only then may a
/// next-page URL from a response receive the source's credentials.
pub fn same_origin(url: &Url, base: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback() {
        assert!(parse_base_url("https://api.linkedin.com").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("http://[::1]:8080/x").is_ok());
        assert!(parse_base_url("http://localhost:1").is_ok());
        assert!(parse_base_url("http://api.linkedin.com").is_err());
        assert!(parse_base_url("http://10.0.0.1").is_err());
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://user:pw@x.com").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn credentials_are_redacted() {
        let u = Url::parse(
            "https://graph.facebook.com/v21.0/act_1/insights?fields=spend&access_token=EAAB123&after=x",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = redact(&u);
        assert!(!shown.contains("EAAB123"), "{shown}");
        assert!(
            shown.contains("access_token=***") && shown.contains("fields=spend") && shown.contains("after=x")
        );
    }

    #[test]
    fn origins() {
        let base = Url::parse("https://api.x.com/v1/").unwrap_or_else(|e| panic!("{e}"));
        let same = Url::parse("https://api.x.com:443/v1/next?c=1").unwrap_or_else(|e| panic!("{e}"));
        let other = Url::parse("https://evil.com/v1/next").unwrap_or_else(|e| panic!("{e}"));
        assert!(same_origin(&same, &base));
        assert!(!same_origin(&other, &base));
    }
}
