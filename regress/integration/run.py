#!/usr/bin/python3
"""
run.py -- the integration test runner: the real daemon, real clients.

    run.py --bindir obj/bin [-k SUBSTRING] [-x SUBSTRING] [--timeout-scale X]
           [--list]

Discovers the functions named test_* in the modules test_*.py beside this
file (in file order), runs each with a time limit, and prints

    PASS module::test
    FAIL module::test: reason
        (traceback, then the tail of each daemon log the test started)
    SKIP module::test: reason (fixture.skip(): the test did not run)

ending with the line "N passed, N failed, N skipped".  Exit status 1 if
any test failed (or none ran).  Needs root.  No third-party modules:
Debian's /usr/bin/python3 is enough.

The programs under test are copied from --bindir into a directory every
user can read before the first test, so the test users can run sendmail
and smtpctl wherever the tree is (a checkout under /root is mode 0700).
After the last test the users, groups, mailboxes and directories the run
created are removed again.

A test module may set TIMEOUT (seconds) for its tests, and a test function
may carry a .timeout attribute.  A module whose tests share servers
started once (test_cluster.py) may define teardown_module(): it is run
after the module's last test that ran, with the module's TIMEOUT, and a
failure there is one more failed test (module::teardown_module).
Daemon logs are kept under regress/results/<build>/ (obj, obj-san); set
POSTHASTE_KEEP=1 to keep the temporary spools too.
"""

import argparse
import importlib
import inspect
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True	# no __pycache__ in the source tree

import fixture  # noqa: E402

DEFAULT_TIMEOUT = 60


class TestTimeout(BaseException):
    """Raised in the test by SIGALRM.  A BaseException, so that a test's
    own "except Exception" cannot swallow it."""


def _on_alarm(signum, frame):
    raise TestTimeout()


def discover(pattern, exclude=()):
    tests = []
    for name in sorted(os.listdir(HERE)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        modname = name[:-3]
        try:
            module = importlib.import_module(modname)
        except Exception:
            # A module that does not import is one failing test, not a
            # crash of the whole run.
            err = traceback.format_exc()

            def broken(err=err):
                raise AssertionError("module does not import:\n" + err)
            tests.append(("%s::<import>" % modname, broken, DEFAULT_TIMEOUT))
            continue
        mod_timeout = getattr(module, "TIMEOUT", DEFAULT_TIMEOUT)
        funcs = [f for n, f in vars(module).items()
                 if n.startswith("test_") and inspect.isfunction(f)
                 and f.__module__ == modname]
        funcs.sort(key=lambda f: f.__code__.co_firstlineno)
        for f in funcs:
            full = "%s::%s" % (modname, f.__name__)
            if pattern and pattern not in full:
                continue
            if any(x in full for x in exclude):
                continue
            tests.append((full, f, getattr(f, "timeout", mod_timeout)))
    return tests


def indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def short_reason(exc):
    if isinstance(exc, TestTimeout):
        return None
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    if isinstance(exc, AssertionError):
        return first or "assertion failed"
    return "%s: %s" % (type(exc).__name__, first) if first \
        else type(exc).__name__


def copy_programs(bindir):
    """A copy of bindir/* (and the forging and sandbox test builds, and
    test_dkim_codec.py's dkim_tool, test_milter_codec.py's
    milter_probe and test_table_pgsql.py's table_probe, beside it in
    ../regress/) in a new
    directory of mode 0755 under /tmp, so that
    unprivileged users can run the programs whatever the modes of the
    directories above the tree.  Returns (root, new bindir)."""
    root = tempfile.mkdtemp(prefix="posthaste-bin.")
    os.chmod(root, 0o755)
    dest = os.path.join(root, "bin")
    os.mkdir(dest, 0o755)
    for name in sorted(os.listdir(bindir)):
        src = os.path.join(bindir, name)
        if os.path.isfile(src):
            shutil.copy2(src, dest)
            os.chmod(os.path.join(dest, name), 0o755)
    os.mkdir(os.path.join(root, "regress"), 0o755)
    for test_build in ("smtpd-forge", "smtpd-sandbox", "dkim_tool",
                       "milter_probe", "table_probe"):
        src = os.path.join(os.path.dirname(bindir), "regress", test_build)
        if os.path.isfile(src):
            shutil.copy2(src, os.path.join(root, "regress"))
    return root, dest


def run_one(name, func, timeout, scale):
    """Run one test; returns (status, reason, details), status being
    "pass", "fail" or "skip"."""
    limit = max(1, int(timeout * scale))
    fixture.begin_test(name)
    reason = None
    skipped = None
    details = []
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit)
    try:
        try:
            func()
        finally:
            signal.alarm(0)
    except TestTimeout:
        reason = "timed out after %ds" % limit
        details.append("".join(traceback.format_exc(limit=-3)))
    except KeyboardInterrupt:
        raise
    except fixture.Skip as e:
        skipped = str(e) or "skipped"
    except BaseException as e:
        reason = short_reason(e)
        details.append(traceback.format_exc())

    # Stop whatever the test left running; a failed stop (unclean exit,
    # leftover children, sanitizer report) fails the test too.
    daemons = []
    signal.alarm(60)
    try:
        daemons = fixture.end_test()
    except AssertionError as e:
        daemons = list(fixture._started)
        if reason is None:
            reason = str(e)
        else:
            details.append("also: %s" % e)
    except TestTimeout:
        reason = reason or "timed out stopping the daemon"
    finally:
        signal.alarm(0)

    if reason is not None:
        for d in daemons:
            details.append("daemon log %s (last lines):\n%s"
                           % (d.log_path, indent(d.log_tail(40))))
        return "fail", reason, details
    if skipped is not None:
        return "skip", skipped, details
    return "pass", None, details


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("--bindir", required=True,
                    help="directory holding the built smtpd (obj/bin, obj-san/bin)")
    ap.add_argument("-x", dest="exclude", action="append", default=[],
                    help="leave out tests whose name contains this "
                    "(repeatable)")
    ap.add_argument("-k", dest="pattern", default="",
                    help="run only tests whose name contains this")
    ap.add_argument("--timeout-scale", type=float,
                    default=float(os.environ.get("POSTHASTE_TIMEOUT_SCALE",
                                                 "1")),
                    help="multiply every per-test time limit")
    ap.add_argument("--list", action="store_true",
                    help="list the tests and exit")
    args = ap.parse_args()

    bindir = os.path.abspath(args.bindir)
    fixture.BINDIR = bindir
    # obj/bin -> "obj", obj-san/bin -> "obj-san"
    build = os.path.basename(bindir)
    if build == "bin":
        build = os.path.basename(os.path.dirname(bindir))
    fixture.RESULTS = os.path.join(fixture.REPO, "regress", "results", build)
    tests = discover(args.pattern, args.exclude)
    if args.list:
        for name, _, timeout in tests:
            print("%s (%ds)" % (name, timeout))
        return 0

    def teardown(modname):
        """The module's teardown_module(), if it has one, as a test."""
        module = sys.modules.get(modname)
        func = getattr(module, "teardown_module", None)
        if func is None:
            return None
        return run_one("%s::teardown_module" % modname, func,
                       getattr(module, "TIMEOUT", DEFAULT_TIMEOUT),
                       args.timeout_scale)

    passed = failed = skipped = 0
    setup_error = None
    copy_root = None
    smtpd = os.path.join(bindir, "smtpd")
    if not (os.path.isfile(smtpd) and os.access(smtpd, os.X_OK)):
        setup_error = "%s not built" % smtpd
    else:
        try:
            copy_root, fixture.BINDIR = copy_programs(bindir)
            fixture.setup_system()
        except (OSError, fixture.FixtureError) as e:
            setup_error = str(e)

    started = time.monotonic()
    # (name, func, timeout); after a module's last test, its teardown
    plan = []
    for i, test in enumerate(tests):
        plan.append(test)
        modname = test[0].split("::")[0]
        if i + 1 == len(tests) or tests[i + 1][0].split("::")[0] != modname:
            if getattr(sys.modules.get(modname), "teardown_module", None):
                plan.append(("%s::teardown_module" % modname,
                             lambda m=modname: teardown(m), None))
    for name, func, timeout in plan:
        if setup_error:
            print("FAIL %s: %s" % (name, setup_error), flush=True)
            failed += 1
            continue
        t0 = time.monotonic()
        if timeout is None:
            status, reason, details = func()
        else:
            status, reason, details = run_one(name, func, timeout,
                                              args.timeout_scale)
        took = time.monotonic() - t0
        if status == "pass":
            passed += 1
            print("PASS %s (%.1fs)" % (name, took), flush=True)
        elif status == "skip":
            skipped += 1
            print("SKIP %s: %s" % (name, reason), flush=True)
        else:
            failed += 1
            first, _, rest = (reason or "failed").partition("\n")
            print("FAIL %s: %s" % (name, first), flush=True)
            if rest.strip():
                details.insert(0, rest)
            for d in details:
                print(indent(d), flush=True)
    if not tests:
        print("no tests found%s" % (" matching %r" % args.pattern
                                    if args.pattern else ""))
    # leave the machine as it was: the run's users, mailboxes, test root
    # and the copy of the programs go
    for problem in fixture.teardown_system():
        print("FAIL cleanup: %s" % problem, flush=True)
        failed += 1
    if copy_root:
        shutil.rmtree(copy_root, ignore_errors=True)
    print("integration (%s): %.0fs" % (build, time.monotonic() - started))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped),
          flush=True)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
