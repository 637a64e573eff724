//! Where a client forwards its action: read from the action's `main`, which holds the
//! function's name and the server's address, `main@url` or `@url` (`ops action create ...
//! --main main@http://ops-cuda-service:8080`), as the fork's `parseMainFlag` reads it.
//!
//! A `main` without any `@` is all URL, as in the fork. A URL without `://` is `https://`.
//! Only its scheme and host (with the port) are used: requests go to `/init`, `/run` and
//! `/stop` at the server's root, whatever path the URL has.

use crate::error::ForwardError;
use crate::http::client::Endpoint;

/// `main` split into the function's name (empty: the server's default, `main`) and the
/// server.
pub fn parse(main: &str) -> Result<(String, Endpoint), ForwardError> {
    let parts: Vec<&str> = main.split('@').collect();
    let (function, url) = match parts.as_slice() {
        [function, url] => (*function, *url),
        [url] => ("", *url),
        _ => return Err(ForwardError::BadMain),
    };
    Ok((function.to_string(), endpoint(url)?))
}

fn endpoint(url: &str) -> Result<Endpoint, ForwardError> {
    if url.is_empty() {
        return Err(ForwardError::EmptyUrl);
    }
    let bad = |why| ForwardError::BadUrl(url.to_string(), why);
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address without its ']'"))?;
            if !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b".:%".contains(&b))
            {
                return Err(bad("not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or_else(|| bad("bad port"))?),
                ),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    // A name goes into the Host header and TLS's server name: nothing else belongs there.
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    if !authority.starts_with('[') && !host.bytes().all(name_byte) {
        return Err(bad("not a host name"));
    }
    let port = match port {
        None | Some("") => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(digits) => digits
            .parse::<u16>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("bad port"))?,
    };
    Ok(Endpoint {
        tls,
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(tls: bool, host: &str, port: u16) -> Endpoint {
        Endpoint {
            tls,
            host: host.into(),
            port,
        }
    }

    #[test]
    fn main_names_the_function_and_the_server() {
        let cases = [
            (
                "main@http://ops-cuda-service:8080",
                "main",
                to(false, "ops-cuda-service", 8080),
            ),
            ("@gpu.example.org", "", to(true, "gpu.example.org", 443)),
            (
                "handler@gpu:8443/ignored?x=1",
                "handler",
                to(true, "gpu", 8443),
            ),
            ("http://127.0.0.1:9000", "", to(false, "127.0.0.1", 9000)),
            ("f@HTTP://[::1]:81/", "f", to(false, "::1", 81)),
            ("f@http://host:", "f", to(false, "host", 80)),
        ];
        for (main, function, endpoint) in cases {
            assert_eq!(
                parse(main).unwrap(),
                (function.to_string(), endpoint),
                "{main}"
            );
        }
    }

    #[test]
    fn what_the_fork_refuses_is_refused_in_its_words() {
        let text = |main: &str| parse(main).unwrap_err().to_string();
        assert_eq!(
            text("a@b@c"),
            "invalid value for --main flag. Must be in the form of <main>@<proxy> or @<proxy>"
        );
        assert_eq!(text("main@"), "empty URL");
        assert_eq!(text(""), "empty URL");
        for bad in [
            "f@ftp://host",
            "f@http://",
            "f@http://host:port",
            "f@http://host:99999",
            "f@http://a b",
            "f@http://[::1",
            "f@http://[::1]x",
            "f@http://host\r\nX: y",
        ] {
            assert!(text(bad).starts_with("invalid proxy URL"), "{bad}");
        }
    }
}
