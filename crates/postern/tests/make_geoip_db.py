"""Writes a tiny GeoIP2-City-style MaxMind database for the GeoIP tests.

Usage: python3 make_geoip_db.py OUT.mmdb

203.0.113.0/24 is "Berlin, Germany"; 198.51.100.0/24 has a country only
("France"). The database is IPv6 with IPv4 mapped in (as GeoLite2-City
is), so IPv4 lookups work. Needs the PyPI package mmdb-writer (and netaddr).
"""

import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

writer = MMDBWriter(
    ip_version=6,
    ipv4_compatible=True,
    database_type="GeoLite2-City",
    languages=["en"],
    description="Postern test database",
)
writer.insert_network(
    IPSet(["203.0.113.0/24"]),
    {
        "city": {"names": {"en": "Berlin"}},
        "country": {"names": {"en": "Germany"}, "iso_code": "DE"},
    },
)
writer.insert_network(
    IPSet(["198.51.100.0/24"]),
    {"country": {"names": {"en": "France"}, "iso_code": "FR"}},
)
writer.to_db_file(sys.argv[1])
