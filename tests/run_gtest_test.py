#!/usr/bin/env python3
"""Checks tests/run_gtest.py (the skip policy ctest runs every test binary through) on fake test
binaries that write a given gtest XML report: expected skips exit 77, skips that should have run
on this machine and untagged skips fail, failures pass through."""
import os
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "run_gtest.py")

XML = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="0" disabled="0" errors="0" name="AllTests">
  <testsuite name="S" tests="2" failures="0" disabled="0" skipped="1" errors="0">
    <testcase name="Ran" status="run" result="completed" classname="S" />
    {skip}
  </testsuite>
</testsuites>
"""
SKIP = ('<testcase name="Skipped" status="run" result="skipped" classname="S">'
        '<skipped message="x.cpp:1&#x0A;Skipped&#x0A;{m}"><![CDATA[x.cpp:1\nSkipped\n{m}]]>'
        '</skipped></testcase>')


def run(tmp, skip_message, rc=0, shared_dir="", env=None):
    """Runs run_gtest.py on a fake binary; returns (exit code, output)."""
    skip = SKIP.format(m=skip_message) if skip_message is not None else ""
    xml = os.path.join(tmp, "report.xml")
    fake = os.path.join(tmp, "fake_test")
    with open(os.path.join(tmp, "fake.xml"), "w") as f:
        f.write(XML.format(skip=skip))
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\ncp {tmp}/fake.xml \"${{1#--gtest_output=xml:}}\"\nexit {rc}\n")
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IEXEC)
    e = dict(os.environ)
    e.pop("PREVIEWDB_REQUIRE_PEERS", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, RUNNER, "--report", xml, "--shared-dir", shared_dir, "--",
                        fake], capture_output=True, text=True, env=e)
    return r.returncode, r.stdout + r.stderr


def main():
    failures = []

    def check(cond, what, out):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)
            print(out)

    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "no-shared")
        present = os.path.join(tmp, "shared")
        os.makedirs(os.path.join(present, "corpora"))

        rc, out = run(tmp, None)
        check(rc == 0, "no skip: exit 0", out)
        rc, out = run(tmp, None, rc=1)
        check(rc == 1, "a failed test: the binary's exit status", out)
        rc, out = run(tmp, "[shared] ../shared is missing", rc=1, shared_dir=missing)
        check(rc == 1, "a failure wins over an expected skip", out)
        rc, out = run(tmp, "[shared] ../shared is missing", shared_dir=missing)
        check(rc == 77 and "skipped S.Skipped" in out,
              "[shared] skip without ../shared: 77 (ctest: Skipped), named", out)
        rc, out = run(tmp, "[shared] ../shared/corpora/x is missing", shared_dir=present)
        check(rc == 1 and "UNEXPECTED SKIP S.Skipped" in out,
              "[shared] skip with ../shared present: fails", out)
        rc, out = run(tmp, "dbmate is missing", shared_dir=missing)
        check(rc == 1 and "no reason tag" in out, "a skip without a reason tag: fails", out)
        rc, out = run(tmp, "[peer:nosuchtool] not installed", shared_dir=missing)
        check(rc == 77, "[peer:...] skip for a peer that is not installed: 77", out)
        rc, out = run(tmp, "[peer:nosuchtool] not installed", shared_dir=missing,
                      env={"PREVIEWDB_REQUIRE_PEERS": "1"})
        check(rc == 1 and "PREVIEWDB_REQUIRE_PEERS" in out,
              "[peer:...] skip when scripts/test.sh installed the peers: fails", out)
        rc, out = run(tmp, "[root] needs root", shared_dir=missing)
        want = 1 if os.geteuid() == 0 else 77
        check(rc == want, f"[root] skip as uid {os.geteuid()}: {want}", out)

        reports = os.path.join(tmp, "reports")
        os.makedirs(reports)
        run(tmp, "[shared] ../shared/corpora/x is missing", shared_dir=present)
        os.replace(os.path.join(tmp, "report.xml"), os.path.join(reports, "migrate.xml"))
        r = subprocess.run([sys.executable, RUNNER, "--summary", reports, "--shared-dir", present],
                           capture_output=True, text=True)
        check(r.returncode == 1 and "skipped tests: 1 (1 unexpected on this machine)" in r.stdout,
              "--summary lists every skip and fails on an unexpected one", r.stdout + r.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
