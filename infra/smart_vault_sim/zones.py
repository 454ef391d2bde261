"""Zones of the emulated account that are not plain, healthy Availability Zones.

moto lists only Availability Zones, all ``available``. An account that opted in to a Local Zone
or a Wavelength Zone sees them in DescribeAvailabilityZones too, with ``ZoneType`` ``local-zone``
or ``wavelength-zone``, and a zone can be ``impaired`` or ``unavailable`` (EC2 API Reference,
DescribeAvailabilityZones: "displays all Availability Zones, Local Zones, and Wavelength Zones
[...] that are opted in"; filters ``zone-type`` and ``state``; AvailabilityZone.State). Their
names sort before the Region's own zones (``us-east-1-bos-1a`` < ``us-east-1a``), so code that
takes the "first" zone picks one of them unless it filters. The emulated account therefore opts
in to one of each in the scenario's Region while a simulation runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend, Zone


def opted_in_zones(region: str) -> list[Zone]:
    """A Local Zone and a Wavelength Zone of ``region``, named as EC2 names them."""
    short = "".join(p[0] if p.isalpha() else p for p in region.split("-"))  # us-east-1 -> ue1
    return [
        Zone(region_name=region, name=f"{region}-lz-1a", zone_id=f"{short}-lz1-az1", zone_type="local-zone"),
        Zone(region_name=region, name=f"{region}-wl1-wlz-1", zone_id=f"{short}-wl1-wlz1", zone_type="wavelength-zone"),
    ]


@contextmanager
def opted_in(region: str) -> Iterator[list[Zone]]:
    """The Region's zones with the opted-in Local and Wavelength Zones, for the block only
    (moto keeps one zone table for every backend and test); yields the Region's zone list, in
    which a test may mark a zone ``impaired``."""
    table = RegionsAndZonesBackend.zones
    before = table.get(region, [])
    table[region] = opted_in_zones(region) + [_copy(z) for z in before]
    try:
        yield table[region]
    finally:
        table[region] = before


def _copy(zone: Zone) -> Zone:
    """A zone of its own, so a state set during one simulation never leaks into the next."""
    fresh = Zone(region_name=zone.region_name, name=zone.name, zone_id=zone.zone_id, zone_type=zone.zone_type)
    fresh.state = zone.state
    return fresh
