"""Which upgrade breaks what: the newest releases against the lock, one upgrade at a time.

Used by ``.ci/run --latest`` (standard library only, runs in any Python ≥ 3.11):

    python .ci/blame_upgrades.py --list LOCK LATEST
        the packages whose version differs between two ``pip freeze`` files
    python .ci/blame_upgrades.py --blame LOCK LATEST JUNIT_XML
        for the tests that failed with the newest releases (JUnit XML from pytest), a fresh
        virtual environment with the lock, then each upgrade alone (``pip install --no-deps``) and
        those tests again: prints which upgrade turns which test red. A test that no single upgrade
        breaks needs several together (or is flaky): it is listed as such.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECT = re.compile(r'^\s*"([A-Za-z0-9_.\-]+)')


def canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path) -> dict[str, str]:
    """``name==version`` lines of a ``pip freeze`` / constraints file (comments and others skipped)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[canonical(name)] = version.strip()
    return pins


def direct_dependencies() -> set[str]:
    """Names listed in pyproject.toml's dependency arrays (ours to keep working with)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    names = set()
    for line in text.splitlines():
        if (match := DIRECT.match(line)) and not line.strip().startswith("#"):
            names.add(canonical(re.split(r"[\[<>=!~; ]", match.group(1))[0]))
    return names


def upgrades(lock: dict[str, str], latest: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, locked, newest) for every package that differs; direct dependencies first."""
    direct = direct_dependencies()
    names = sorted(set(lock) | set(latest), key=lambda n: (n not in direct, n))
    return [(n, lock.get(n, "-"), latest.get(n, "-")) for n in names if lock.get(n) != latest.get(n)]


def print_upgrades(rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        print("the newest releases are the locked ones")
        return
    direct = direct_dependencies()
    print(f"{'package':<28}{'locked':<20}{'newest':<20}")
    for name, old, new in rows:
        print(f"{name + (' *' if name in direct else ''):<28}{old:<20}{new:<20}")
    print("(* a direct dependency of microgrid)")


def failed_tests(junit: Path) -> list[str]:
    """pytest node ids of the failed or erroring test cases in a JUnit XML report (xunit1 or xunit2)."""
    ids = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        classname, name = case.get("classname", ""), case.get("name", "")
        parts = classname.split(".")
        for cut in range(len(parts), 0, -1):  # the longest prefix that is a file: the rest are classes
            path = "/".join(parts[:cut])
            for suffix in (".py", ""):
                if (ROOT / (path + suffix)).is_file():
                    ids.append("::".join([path + suffix, *parts[cut:], name]))
                    break
            else:
                continue
            break
        else:
            ids.append(f"{classname}::{name}")
    return ids


def run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def still_failing(venv: Path, tests: list[str]) -> set[str]:
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report.name}", *tests)
        return set(failed_tests(Path(report.name))) if Path(report.name).stat().st_size else set(tests)


def blame(lock_file: Path, latest_file: Path, junit: Path) -> None:
    tests = failed_tests(junit)
    rows = upgrades(read_freeze(lock_file), read_freeze(latest_file))
    print(f"== which upgrade breaks what: {len(tests)} test(s) red with the newest releases, {len(rows)} upgrade(s)")
    venv = Path(tempfile.mkdtemp()) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    run(venv, "-m", "pip", "install", "--quiet", "-e", ".[dev]", "-c", str(lock_file))
    base = still_failing(venv, tests)
    if base:
        print(f"red with the lock too (not an upgrade): {', '.join(sorted(base))}")
    explained: set[str] = set(base)
    for name, old, new in rows:
        if new == "-":
            continue
        swapped = run(venv, "-m", "pip", "install", "--quiet", "--no-deps", f"{name}=={new}")
        broken = still_failing(venv, [t for t in tests if t not in base]) if swapped.returncode == 0 else set()
        if old != "-":
            run(venv, "-m", "pip", "install", "--quiet", "--no-deps", f"{name}=={old}")
        else:
            run(venv, "-m", "pip", "uninstall", "--quiet", "--yes", name)
        if swapped.returncode != 0:
            print(f"{name} {old} -> {new}: could not be installed alone ({swapped.stderr.strip()[-200:]})")
        elif broken:
            print(f"{name} {old} -> {new} breaks: {', '.join(sorted(broken))}")
            explained |= broken
    for test in sorted(set(tests) - explained):
        print(f"{test}: no single upgrade breaks it (several together, or flaky)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", nargs=2, metavar=("LOCK", "LATEST"), type=Path)
    group.add_argument("--blame", nargs=3, metavar=("LOCK", "LATEST", "JUNIT_XML"), type=Path)
    args = parser.parse_args()
    if args.list:
        print_upgrades(upgrades(read_freeze(args.list[0]), read_freeze(args.list[1])))
    else:
        blame(*args.blame)


if __name__ == "__main__":
    main()
