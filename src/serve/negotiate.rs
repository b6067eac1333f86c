//! Content-coding negotiation from `Accept-Encoding` (RFC 9110 §12.5.3).
//!
//! The crates that once did this (`accept-encoding` and its forks) are
//! archived, and tower-http keeps its negotiation private, so this small
//! parser lives here with its own tests.

use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

use crate::snapshot::Encoding;

/// Quality values in thousandths, as RFC 9110 §12.4.2 allows three decimals.
type Q = u16;

#[derive(Debug, Default)]
struct Accepted {
    br: Option<Q>,
    gzip: Option<Q>,
    identity: Option<Q>,
    star: Option<Q>,
}

fn parse_q(s: &str) -> Option<Q> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value: Q = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

fn parse(headers: &HeaderMap) -> Option<Accepted> {
    let mut seen = false;
    let mut acc = Accepted::default();
    for value in headers.get_all(ACCEPT_ENCODING) {
        seen = true;
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            let mut q = 1000;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        // A malformed q-value makes the item unusable, not the header.
                        q = parse_q(v).unwrap_or(0);
                    }
                }
            }
            let slot = match coding.as_str() {
                "br" => &mut acc.br,
                "gzip" | "x-gzip" => &mut acc.gzip,
                "identity" => &mut acc.identity,
                "*" => &mut acc.star,
                _ => continue,
            };
            // If a coding is listed twice, the higher quality counts.
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    seen.then_some(acc)
}

/// Picks the encoding to send, given the ones available for a resource.
///
/// Returns `None` when the client accepts none of them, including identity
/// (`identity;q=0` or `*;q=0` with nothing else acceptable): answer 406.
/// Among equal qualities the smaller body wins: brotli, then gzip, then identity.
pub fn choose(headers: &HeaderMap, available: &[Encoding]) -> Option<Encoding> {
    let Some(acc) = parse(headers) else {
        // No Accept-Encoding: any coding is allowed, but identity is the safe choice.
        return available
            .contains(&Encoding::Identity)
            .then_some(Encoding::Identity);
    };
    let quality = |e: Encoding| -> Q {
        let explicit = match e {
            Encoding::Brotli => acc.br,
            Encoding::Gzip => acc.gzip,
            Encoding::Identity => acc.identity,
        };
        match (explicit, acc.star, e) {
            (Some(q), _, _) => q,
            (None, Some(q), _) => q,
            // Identity is acceptable unless excluded (RFC 9110 §12.5.3).
            (None, None, Encoding::Identity) => 1,
            (None, None, _) => 0,
        }
    };
    [Encoding::Brotli, Encoding::Gzip, Encoding::Identity]
        .into_iter()
        .filter(|e| available.contains(e))
        .map(|e| (quality(e), e))
        .filter(|(q, _)| *q > 0)
        // max_by_key keeps the last maximum; iterate in reverse preference order.
        .rev()
        .max_by_key(|(q, _)| *q)
        .map(|(_, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::{Brotli, Gzip, Identity};

    const ALL: &[Encoding] = &[Identity, Gzip, Brotli];

    fn check(accept: Option<&str>, available: &[Encoding], expected: Option<Encoding>) {
        let mut h = HeaderMap::new();
        if let Some(a) = accept {
            h.insert(ACCEPT_ENCODING, a.parse().unwrap());
        }
        assert_eq!(
            choose(&h, available),
            expected,
            "Accept-Encoding: {accept:?}"
        );
    }

    #[test]
    fn q_values_and_preferences() {
        check(None, ALL, Some(Identity));
        check(Some(""), ALL, Some(Identity));
        check(Some("gzip"), ALL, Some(Gzip));
        check(Some("gzip, deflate, br"), ALL, Some(Brotli));
        check(Some("br;q=0, gzip"), ALL, Some(Gzip));
        check(Some("br;q=0.5, gzip;q=0.9"), ALL, Some(Gzip));
        check(Some("gzip;q=0.5, br;q=1.0"), ALL, Some(Brotli));
        check(Some("*"), ALL, Some(Brotli));
        check(Some("*;q=0.1, gzip"), ALL, Some(Gzip));
        check(Some("deflate"), ALL, Some(Identity));
        check(Some("GZIP;Q=1"), ALL, Some(Gzip));
        check(Some("x-gzip"), ALL, Some(Gzip));
        check(Some("gzip;q=0.999, identity;q=1"), ALL, Some(Identity));
    }

    #[test]
    fn identity_can_be_refused() {
        check(Some("identity;q=0"), ALL, None);
        check(Some("identity;q=0, gzip"), ALL, Some(Gzip));
        check(Some("*;q=0"), ALL, None);
        check(Some("*;q=0, identity"), ALL, Some(Identity));
        check(Some("br"), &[Identity], Some(Identity));
        check(Some("br, identity;q=0"), &[Identity], None);
    }

    #[test]
    fn malformed_q_values_make_only_that_item_unacceptable() {
        check(Some("br;q=2, gzip"), ALL, Some(Gzip));
        check(Some("br;q=abc, gzip;q=0.5"), ALL, Some(Gzip));
        check(Some("br;q=0.0001"), ALL, Some(Identity));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.5"), None);
    }
}
