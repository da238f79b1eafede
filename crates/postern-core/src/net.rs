//! IP addresses and ranges: trusted proxies and `bind_ip_range` (SPEC §2).
