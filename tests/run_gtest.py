#!/usr/bin/env python3
"""Runs one GoogleTest binary for ctest and makes its skips mean something.

ctest runs each test binary through this script:

    run_gtest.py --report DIR/NAME.xml --shared-dir DIR -- BINARY [gtest args...]

It runs the binary with --gtest_output=xml:REPORT, then reads every skipped test's message. Each
skip message starts with a reason tag (tests/harness/harness.hpp), checked against this machine:

    [shared]       expected only when ../shared (--shared-dir) is missing
    [peer:dbmate]  expected only when dbmate is not installed and PREVIEWDB_REQUIRE_PEERS is unset
    [peer:drizzle] expected only when drizzle-orm is not installed and PREVIEWDB_REQUIRE_PEERS is
                   unset (scripts/test.sh sets it: it installs the peers itself)
    [root]         expected only when not running as root (or without a 'nobody' user)
    [peer:verdaccio] (the npm registry of the packaging test) like the other peers

Exit status: the binary's when a test failed; 1 when a test skipped that should have run here
(or skipped without a tag); 77 (ctest's SKIP_RETURN_CODE: the test shows as "Skipped") when
every test passed or skipped for an expected reason and at least one skipped; else 0.

    run_gtest.py --summary DIR    prints every skip recorded in DIR/*.xml (scripts/test.sh)
"""
import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

SKIP_EXIT = 77
TAG = re.compile(r"\[(shared|peer:[a-z-]+|root)\]")
PEERS = {
    "dbmate": lambda: shutil.which("dbmate") is not None,
    "drizzle": lambda: shutil.which("node") is not None
    and os.path.isdir("/opt/previewdb-peers/node_modules/drizzle-orm"),
    "verdaccio": lambda: shutil.which("npm") is not None
    and os.path.exists("/opt/previewdb-peers/verdaccio/node_modules/.bin/verdaccio"),
    "s3rver": lambda: shutil.which("node") is not None
    and os.path.isdir("/opt/previewdb-peers/node_modules/s3rver"),
}


def skips(report):
    """(test name, message) for each skipped test in a gtest XML report."""
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            text = skipped.text or skipped.get("message", "")
            out.append((f"{case.get('classname')}.{case.get('name')}", " ".join(text.split())))
    return out


def unexpected(message, shared_dir):
    """Why this skip should not have happened on this machine, or None when it is expected."""
    m = TAG.search(message)
    if not m:
        return "the skip message has no reason tag ([shared], [peer:<tool>], [root])"
    tag = m.group(1)
    if tag == "shared":
        if shared_dir and os.path.isdir(os.path.join(shared_dir, "corpora")):
            return f"{shared_dir} is present, so this case should have run"
        return None
    if tag == "root":
        try:
            pwd.getpwnam("nobody")
            has_nobody = True
        except KeyError:
            has_nobody = False
        if os.geteuid() == 0 and has_nobody:
            return "running as root with a 'nobody' user, so this test should have run"
        return None
    peer = tag.split(":", 1)[1]
    if os.environ.get("PREVIEWDB_REQUIRE_PEERS") == "1":
        return f"PREVIEWDB_REQUIRE_PEERS=1: {peer} is installed by scripts/install-deps.sh --peers"
    if peer in PEERS and PEERS[peer]():
        return f"{peer} is installed here, so this test should have run"
    return None


def run(args):
    if os.path.exists(args.report):
        os.remove(args.report)
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    rc = subprocess.call(args.command + [f"--gtest_output=xml:{args.report}"])
    if rc != 0:
        return rc
    if not os.path.exists(args.report):
        print(f"run_gtest: {args.report} was not written", file=sys.stderr)
        return 1
    bad = 0
    found = skips(args.report)
    for name, message in found:
        why = unexpected(message, args.shared_dir)
        if why:
            bad += 1
            print(f"UNEXPECTED SKIP {name}: {message}\n  {why}")
        else:
            print(f"skipped {name}: {message}")
    if bad:
        print(f"run_gtest: {bad} test(s) skipped that should have run on this machine")
        return 1
    if found:
        print(f"run_gtest: {len(found)} test(s) skipped (expected here); the others passed")
        return SKIP_EXIT
    return 0


def summary(directory, shared_dir):
    reports = sorted(f for f in os.listdir(directory) if f.endswith(".xml")) if os.path.isdir(
        directory) else []
    total = bad = 0
    for f in reports:
        for name, message in skips(os.path.join(directory, f)):
            total += 1
            why = unexpected(message, shared_dir)
            bad += bool(why)
            print(f"  {'UNEXPECTED ' if why else ''}skip {f[:-4]}: {name}: {message}" +
                  (f" ({why})" if why else ""))
    print(f"skipped tests: {total} ({bad} unexpected on this machine)")
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report")
    p.add_argument("--shared-dir", default="")
    p.add_argument("--summary", metavar="DIR")
    p.add_argument("command", nargs="*")
    args = p.parse_args()
    if args.summary:
        return summary(args.summary, args.shared_dir)
    if not args.report or not args.command:
        p.error("--report FILE -- BINARY [args...] (or --summary DIR)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
