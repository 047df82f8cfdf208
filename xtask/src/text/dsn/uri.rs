//! A `postgresql://` URI's parts, as libpq reads them, each with its span in the string (so a
//! password can be cut out exactly).

use super::{decode, Param};

pub(super) fn parse_uri(raw: &str, start: usize) -> Result<Vec<Param>, String> {
    let mut params = Vec::new();
    let p = credentials(raw, start, &mut params)?;
    let p = hosts_and_ports(raw, p, &mut params)?;
    let p = dbname(raw, p, &mut params)?;
    query(raw, p, &mut params)?;
    Ok(params)
}

/// `user[:password]@`, up to the first '@' before any '/': the position after it.
fn credentials(raw: &str, mut p: usize, params: &mut Vec<Param>) -> Result<usize, String> {
    let b = raw.as_bytes();
    let mut look = p;
    while look < b.len() && b[look] != b'@' && b[look] != b'/' {
        look += 1;
    }
    if look < b.len() && b[look] == b'@' {
        let user_start = p;
        while b[p] != b':' && b[p] != b'@' {
            p += 1;
        }
        if p > user_start {
            params.push(Param { key: "user".into(), value: decode(&raw[user_start..p])?, span: user_start..p });
        }
        if b[p] == b':' {
            // The span covers the ':' too, so `user:pw@` becomes `user@` without it.
            let colon = p;
            let pw_start = p + 1;
            p = look;
            params.push(Param { key: "password".into(), value: decode(&raw[pw_start..p])?, span: colon..p });
        }
        p = look + 1;
    }
    Ok(p)
}

/// Hosts and ports, comma-separated, up to '/' or '?': the position after them.
fn hosts_and_ports(raw: &str, mut p: usize, params: &mut Vec<Param>) -> Result<usize, String> {
    let b = raw.as_bytes();
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    let hosts_start = p;
    loop {
        if p < b.len() && b[p] == b',' {
            p += 1;
        }
        let host;
        if p < b.len() && b[p] == b'[' {
            let h = p + 1;
            while p < b.len() && b[p] != b']' {
                p += 1;
            }
            if p >= b.len() {
                return Err("end of string reached when looking for the matching ] of an IPv6 host".into());
            }
            if p == h {
                return Err("an IPv6 host address may not be empty".into());
            }
            host = &raw[h..p];
            p += 1;
            if p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                return Err(format!("unexpected character `{}` after an IPv6 host", b[p] as char));
            }
        } else {
            let h = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = &raw[h..p];
        }
        hosts.push(decode(host)?);
        let mut port = "";
        if p < b.len() && b[p] == b':' {
            let q = p + 1;
            p = q;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            port = &raw[q..p];
        }
        ports.push(decode(port)?);
        if p >= b.len() || b[p] != b',' {
            break;
        }
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        params.push(Param { key: "host".into(), value: hosts.join(","), span: hosts_start..p });
    }
    if ports.iter().any(|h| !h.is_empty()) {
        params.push(Param { key: "port".into(), value: ports.join(","), span: hosts_start..p });
    }
    Ok(p)
}

/// `/dbname`: the position after it.
fn dbname(raw: &str, mut p: usize, params: &mut Vec<Param>) -> Result<usize, String> {
    let b = raw.as_bytes();
    if p < b.len() && b[p] == b'/' {
        let d = p + 1;
        p = d;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        if p > d {
            params.push(Param { key: "dbname".into(), value: decode(&raw[d..p])?, span: d..p });
        }
    }
    Ok(p)
}

/// `?key=value&...`.
fn query(raw: &str, p: usize, params: &mut Vec<Param>) -> Result<(), String> {
    let b = raw.as_bytes();
    if p < b.len() && b[p] == b'?' {
        let mut q = p + 1;
        while q <= b.len() {
            let end = raw[q..].find('&').map_or(b.len(), |n| q + n);
            let pair = &raw[q..end];
            if !pair.is_empty() {
                let (k, v) =
                    pair.split_once('=').ok_or_else(|| format!("missing key/value separator \"=\" in `{pair}`"))?;
                let (key, value) = (decode(k)?, decode(v)?);
                let (key, value) =
                    if key == "ssl" && value == "true" { ("sslmode".into(), "require".into()) } else { (key, value) };
                // Cut `password=...` with the '&' before it, or the one after it when it comes first.
                let span = if q > p + 1 {
                    q - 1..end
                } else if end < b.len() {
                    q..end + 1
                } else {
                    q - 1..end
                };
                params.push(Param { key, value, span });
            }
            q = end + 1;
        }
    }
    Ok(())
}
