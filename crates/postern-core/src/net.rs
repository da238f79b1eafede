//! IP addresses and ranges: trusted proxies and `bind_ip_range` (SPEC §2).
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, what a dual-stack socket
//! reports for an IPv4 peer) are treated as the IPv4 address they carry
//! everywhere in this module, so one client never counts as two.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// A network such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a
/// network of one (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    /// The network address, host bits cleared.
    network: IpAddr,
    /// Prefix length: 0–32 for IPv4, 0–128 for IPv6.
    prefix: u8,
}

/// Why a network could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid IP address or network {0:?}: use e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32")]
pub struct IpCidrError(pub String);

impl IpCidr {
    /// The network `addr/prefix`; host bits of `addr` are cleared. `None` if
    /// the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let addr = addr.to_canonical();
        let max = max_prefix(addr);
        if prefix > max {
            return None;
        }
        Some(Self {
            network: mask(addr, prefix),
            prefix,
        })
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address is
    /// matched as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl FromStr for IpCidr {
    type Err = IpCidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || IpCidrError(text.to_owned());
        let t = text.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((addr, prefix)) => {
                // Digits only: `u8::from_str` would also take "+8".
                if prefix.is_empty()
                    || prefix.len() > 3
                    || !prefix.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(err());
                }
                let addr: IpAddr = addr.parse().map_err(|_| err())?;
                let prefix: u8 = prefix.parse().map_err(|_| err())?;
                // A mapped address with a v6 prefix (`::ffff:10.0.0.0/104`) becomes
                // the IPv4 network it describes.
                match (addr, addr.to_canonical()) {
                    (IpAddr::V6(_), v4 @ IpAddr::V4(_)) => {
                        (v4, prefix.checked_sub(96).ok_or_else(err)?)
                    }
                    _ => (addr, prefix),
                }
            }
            None => {
                let addr: IpAddr = t.parse().map_err(|_| err())?;
                let addr = addr.to_canonical();
                (addr, max_prefix(addr))
            }
        };
        Self::new(addr, prefix).ok_or_else(err)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with all but the first `prefix` bits cleared.
fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// The subject of a per-IP budget (SPEC §3.1 link limits, SPEC §2 code
/// budgets): an IPv4 address counts alone (`198.51.100.7`), an IPv6 address
/// by its /64 (`2001:db8:1:2::/64`). A /64 is what one home, host or cloud
/// instance is given, so counting each /128 would hand one attacker 2^64
/// budgets. IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub fn rate_limit_subject(ip: IpAddr) -> String {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4.to_string(),
        v6 @ IpAddr::V6(_) => format!("{}/64", mask(v6, 64)),
    }
}

/// Whether two addresses are in the same binding range of `bind_ip_range`
/// (SPEC §2): the same /24 for IPv4, the same /56 for IPv6. IPv4-mapped IPv6
/// addresses count as IPv4; an IPv4 and an IPv6 address never match.
pub fn same_binding_range(a: IpAddr, b: IpAddr) -> bool {
    let (a, b) = (a.to_canonical(), b.to_canonical());
    let prefix = match (a, b) {
        (IpAddr::V4(_), IpAddr::V4(_)) => 24,
        (IpAddr::V6(_), IpAddr::V6(_)) => 56,
        _ => return false,
    };
    mask(a, prefix) == mask(b, prefix)
}

/// The address of the client behind `peer`.
///
/// `x_forwarded_for` holds every `X-Forwarded-For` line of the request, in
/// order. They are one list, as if joined with commas (RFC 9110 §5.3): some
/// proxies (HAProxy `option forwardfor`) add a line rather than extend the
/// last one, and reading only the first line would believe whatever the
/// client wrote there.
///
/// The list is believed only as far as it was written by trusted proxies:
/// when `peer` is trusted, it is walked from the right (the entry the
/// nearest proxy appended) past every trusted proxy, and the first
/// untrusted address is the client. A malformed entry stops the walk, and
/// the last address known good is returned, so a client cannot hide behind
/// garbage. Without a trusted peer the header is ignored: anyone can send
/// it. The result is canonical (IPv4-mapped IPv6 becomes IPv4).
pub fn client_ip(peer: IpAddr, x_forwarded_for: &[&str], trusted: &[IpCidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let entries = x_forwarded_for
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(','));
    for entry in entries {
        let Ok(hop) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = hop.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// Where a form may send a person on to: a path on this server, or `/`;
/// never another site (`//host`, `/\host` and absolute URLs are open
/// redirects).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpCidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn networks_parse_and_print() {
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.168.1.1", "192.168.1.1/32"),
            ("192.168.1.77/24", "192.168.1.0/24"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:db8::1", "2001:db8::1/128"),
            (" 0.0.0.0/0 ", "0.0.0.0/0"),
            ("::/0", "::/0"),
            ("::ffff:10.1.2.3", "10.1.2.3/32"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ];
        for (input, shown) in cases {
            let net: IpCidr = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(net.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0/8",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "example.com",
            "10.0.0.0 /8",
            "::ffff:10.0.0.0/95",
            "/8",
        ] {
            assert!(bad.parse::<IpCidr>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn networks_contain_their_addresses() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.1", "192.168.1.1", true),
            ("192.168.1.1", "192.168.1.2", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("::ffff:10.9.9.9", "10.9.9.9", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "10.0.0.1", false),
            ("::/0", "2001:db8::1", true),
        ];
        for (net, addr, expected) in cases {
            let n: IpCidr = net.parse().unwrap();
            assert_eq!(n.contains(ip(addr)), expected, "{net} contains {addr}");
        }
    }

    #[test]
    fn binding_ranges_are_slash_24_and_slash_56() {
        let cases = [
            ("192.0.2.1", "192.0.2.254", true),
            ("192.0.2.1", "192.0.3.1", false),
            ("192.0.2.1", "::ffff:192.0.2.200", true),
            ("::ffff:192.0.2.1", "::ffff:192.0.9.1", false),
            ("2001:db8:0:ab00::1", "2001:db8:0:abff:ffff::9", true),
            ("2001:db8:0:ab00::1", "2001:db8:0:ac00::1", false),
            ("192.0.2.1", "2001:db8::1", false),
        ];
        for (a, b, expected) in cases {
            assert_eq!(same_binding_range(ip(a), ip(b)), expected, "{a} ~ {b}");
            assert_eq!(same_binding_range(ip(b), ip(a)), expected, "{b} ~ {a}");
        }
    }

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ff::/48"]);
        let cases: [(&str, &str, Option<&str>, &str); 12] = [
            (
                "untrusted peer ignores the header",
                "203.0.113.5",
                Some("198.51.100.1"),
                "203.0.113.5",
            ),
            ("trusted peer without header", "10.0.0.1", None, "10.0.0.1"),
            (
                "one trusted hop",
                "10.0.0.1",
                Some("198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "spoofed left entries are ignored",
                "10.0.0.1",
                Some("1.1.1.1, 198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "chain of trusted proxies",
                "10.0.0.1",
                Some("198.51.100.1, 10.0.0.7,10.0.0.8"),
                "198.51.100.1",
            ),
            (
                "all trusted gives the leftmost",
                "10.0.0.1",
                Some("10.0.0.7, 10.0.0.8"),
                "10.0.0.7",
            ),
            (
                "malformed entry stops the walk",
                "10.0.0.1",
                Some("198.51.100.1, garbage, 10.0.0.9"),
                "10.0.0.9",
            ),
            (
                "malformed last entry keeps the peer",
                "10.0.0.1",
                Some("198.51.100.1, unknown"),
                "10.0.0.1",
            ),
            (
                "empty header keeps the peer",
                "10.0.0.1",
                Some(""),
                "10.0.0.1",
            ),
            (
                "mapped peer is trusted as IPv4",
                "::ffff:10.0.0.1",
                Some("198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "mapped client becomes IPv4",
                "10.0.0.1",
                Some("::ffff:198.51.100.1"),
                "198.51.100.1",
            ),
            (
                "IPv6 proxies",
                "2001:db8:ff::1",
                Some("2001:db8:1::5, 2001:db8:ff::2"),
                "2001:db8:1::5",
            ),
        ];
        for (what, peer, xff, expected) in cases {
            let lines: Vec<&str> = xff.into_iter().collect();
            assert_eq!(
                client_ip(ip(peer), &lines, &trusted),
                ip(expected),
                "{what}"
            );
        }
        assert_eq!(
            client_ip(ip("::ffff:203.0.113.5"), &[], &[]),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn several_x_forwarded_for_lines_are_one_list_walked_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let cases: [(&str, &[&str], &str); 7] = [
            (
                "a proxy that adds a line: the attacker's first line is not believed",
                &["6.6.6.6", "198.51.100.7"],
                "198.51.100.7",
            ),
            (
                "lines and commas mix",
                &["6.6.6.6, 7.7.7.7", "198.51.100.7, 10.0.0.5", "10.0.0.6"],
                "198.51.100.7",
            ),
            (
                "trusted proxies across lines",
                &["198.51.100.7", "10.0.0.5", "10.0.0.6"],
                "198.51.100.7",
            ),
            (
                "all trusted gives the leftmost of the first line",
                &["10.0.0.4, 10.0.0.5", "10.0.0.6"],
                "10.0.0.4",
            ),
            (
                "a malformed last line keeps the peer",
                &["198.51.100.7", "garbage"],
                "10.0.0.1",
            ),
            (
                "a malformed line stops the walk",
                &["198.51.100.7", "unknown", "10.0.0.6"],
                "10.0.0.6",
            ),
            (
                "an empty last line keeps the peer",
                &["198.51.100.7", ""],
                "10.0.0.1",
            ),
        ];
        for (what, lines, expected) in cases {
            assert_eq!(
                client_ip(ip("10.0.0.1"), lines, &trusted),
                ip(expected),
                "{what}"
            );
        }
        // From an untrusted peer no line counts.
        assert_eq!(
            client_ip(ip("203.0.113.5"), &["10.0.0.9", "198.51.100.7"], &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn per_ip_budgets_count_ipv4_alone_and_ipv6_by_its_slash_64() {
        let cases = [
            ("198.51.100.7", "198.51.100.7"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::1", "::/64"),
        ];
        for (addr, subject) in cases {
            assert_eq!(rate_limit_subject(ip(addr)), subject, "{addr}");
        }
    }

    #[test]
    fn forms_go_on_only_to_paths_of_this_server() {
        let cases = [
            (
                Some("/authorize?client_id=x"),
                "/authorize?client_id=x",
                "a path",
            ),
            (Some("//evil.example/x"), "/", "protocol-relative"),
            (
                Some("/\\evil.example"),
                "/",
                "a backslash browsers read as a slash",
            ),
            (Some("https://evil.example/"), "/", "absolute"),
            (Some(""), "/", "empty"),
            (None, "/", "none"),
        ];
        for (next, expected, why) in cases {
            assert_eq!(local_path(next), expected, "{why}");
        }
    }
}
