"""The site model by topic (``shared/spec/site-and-profiles.md``): a site file read into frozen pydantic models.

* :mod:`~microgrid.site.model`: the sections and :class:`Site` itself, :func:`read_site`, the cross-checks;
* :mod:`~microgrid.site.grid`: the grid section, tariffs, outage schedule settings, location, forecast settings;
* :mod:`~microgrid.site.devices`: the Modbus devices serving the assets;
* :mod:`~microgrid.site.centre`: how ``run`` publishes to the city's Situation Centre (``centre:``);
* :mod:`~microgrid.site.operation`: how ``run`` operates the site beyond the reference model (reserve,
  feeders, outlook);
* :mod:`~microgrid.site.values`: value types with units and the strict number rules.

Everything a caller needs is importable from ``microgrid.site``.
"""

from microgrid.site.model import (
    Battery,
    CentreLink,
    Control,
    Feeders,
    ForecastConfig,
    Fuel,
    Generator,
    Grid,
    LoadTier,
    Location,
    OutageScheduleConfig,
    Outlook,
    PVArray,
    Reserve,
    Site,
    SiteInfo,
    TariffZone,
    describe_error,
    parse_duration,
    read_site,
    site_from_dict,
)

__all__ = [
    "Battery",
    "CentreLink",
    "Control",
    "Feeders",
    "ForecastConfig",
    "Fuel",
    "Generator",
    "Grid",
    "LoadTier",
    "Location",
    "OutageScheduleConfig",
    "Outlook",
    "PVArray",
    "Reserve",
    "Site",
    "SiteInfo",
    "TariffZone",
    "describe_error",
    "parse_duration",
    "read_site",
    "site_from_dict",
]
