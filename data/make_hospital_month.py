"""Make a winter month of hospital profiles (deterministic; not shipped: regenerate on demand).

    python data/make_hospital_month.py [--days 30] [--seed 0] [--out data/hospital-winter-month.csv]

The same profiles :func:`microgrid.planning.scenarios.hospital_winter` builds in code: the winter
sample day repeated with day-to-day variation (load level, clearness, clouds), a Kharkiv-like
shifting 4 h on / 4 h off outage schedule with emergency outages, and the two-zone tariff. The CSV
is in the profiles layout (``shared/spec/site-and-profiles.md``), local Kyiv time with UTC offsets.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from microgrid.planning.scenarios import hospital_winter, to_frame

HERE = Path(__file__).parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "hospital-winter-month.csv")
    args = parser.parse_args(argv)
    site, profiles = hospital_winter(args.days, seed=args.seed)
    frame = to_frame(profiles, site.site.timezone)
    frame.round(3).to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(frame)} rows")


if __name__ == "__main__":
    main()
