//! The approximate place of an IP address, from a GeoIP database file in
//! MaxMind's format (`POSTERN_GEOIP_DB`, e.g. GeoLite2-City). `/account`
//! shows it next to each session's address; without a database it shows
//! no place.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{geoip2, Reader};

/// An opened GeoIP database, read whole into memory at start-up.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata.database_type)
            .finish()
    }
}

impl GeoIp {
    /// Opens and checks the database at `path`. The error says why it
    /// cannot be used (missing, unreadable, not a MaxMind database).
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = Reader::open_readfile(path).map_err(|e| e.to_string())?;
        Ok(Self {
            reader,
            path: path.to_owned(),
        })
    }

    /// Where the database was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// "City, Country" (or just the country) in English, when the database
    /// knows the address. Private, loopback and other non-public addresses,
    /// misses and unreadable records give `None`.
    pub fn place(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            return None;
        }
        let record: geoip2::City<'_> = self.reader.lookup(ip).ok()??;
        let english = |names: Option<&std::collections::BTreeMap<&str, &str>>| {
            names
                .and_then(|n| n.get("en"))
                .map(|n| n.trim())
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        };
        let city = english(record.city.as_ref().and_then(|c| c.names.as_ref()));
        let country = english(record.country.as_ref().and_then(|c| c.names.as_ref()));
        match (city, country) {
            (Some(city), Some(country)) => Some(format!("{city}, {country}")),
            (None, Some(country)) => Some(country),
            (Some(city), None) => Some(city),
            (None, None) => None,
        }
    }
}

/// Whether `ip` (canonical: IPv4-mapped addresses already unwrapped) is an
/// address a GeoIP database could place.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // 100.64.0.0/10, carrier-grade NAT.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_loopback_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip.to_canonical()), "{ip}");
        }
        for ip in ["203.0.113.7", "2001:db8::1", "::ffff:203.0.113.7"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public(ip.to_canonical()), "{ip}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = std::env::temp_dir().join(format!("postern-geoip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(GeoIp::open(&path).is_err());
        assert!(GeoIp::open(&dir.join("missing.mmdb")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
