#!/usr/bin/env python3
"""Page load times of the dashboard in a real browser with a big table (BENCHMARKS.md).

Usage: dashboard_page_load.py RTMD RTMCTL RTM_CLIENT [ROUTES] [LOADS]

Starts rtmd (a temporary socket and shm dir, the dashboard on a free loopback port), loads
ROUTES (default 1,048,576) /24 routes with `rtmctl batch -`, subscribes 8 rtm-clients, then
opens each page LOADS times (default 10) in headless chromium (tests/browser/dashboard.py's
DevTools driver) and prints, per page, the browser's own Navigation Timing: the time from the
navigation's start to the whole answer read (`responseEnd`), to the document parsed with its
rows (`domContentLoadedEventEnd`) and to the load event (`loadEventEnd`), in ms — the first
(cold) load and the median and maximum of the others. Every process has a deadline and is
killed by its handle.
"""

import itertools
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "browser"))
from dashboard import Browser, Rtmd, fail, until  # noqa: E402

LOAD_DEADLINE = 600.0


def routes(n):
    """n distinct /24s in unicast space, skipping 0/8, 10/8, 127/8 and 192.0.2/24's /8."""
    count = 0
    for a in range(1, 224):
        if a in (10, 127, 192):
            continue
        for b in range(256):
            for c in range(256):
                if count == n:
                    return
                count += 1
                yield f"route add {a}.{b}.{c}.0/24 via 192.0.2.{1 + count % 200}\n"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def settled(procs):
    """True once none of procs used CPU over the last half second (their initial mirror of
    the whole table is done, so they do not compete with the browser for the two cores)."""
    before = [cpu_ticks(p.pid) for p in procs]
    time.sleep(0.5)
    return before == [cpu_ticks(p.pid) for p in procs]


def main():
    rtmd, rtmctl, client = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 20
    loads = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    daemon = Rtmd(rtmd, rtmctl, "pageload", ["--route-capacity", str(max(n, 1024))])
    tmp, sock, ctl = daemon.tmp, daemon.sock, daemon.ctl
    followers = []
    browser = None

    try:
        daemon.wait_ready()
        t = time.monotonic()
        batch = subprocess.Popen([rtmctl, "--socket", sock, "batch", "-"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for line in routes(n):
            batch.stdin.write(line)
        batch.stdin.close()
        if batch.wait(timeout=LOAD_DEADLINE) != 0:
            fail("rtmctl batch failed")
        held = json.loads(ctl("--json", "status"))["routes"]
        if held != n:
            fail(f"rtmd holds {held} routes after loading {n}")
        print(f"# {n} routes loaded in {time.monotonic() - t:.1f} s", file=sys.stderr)
        for i in range(8):
            followers.append(subprocess.Popen(
                [client, "--socket", sock, "--name", f"follower-{i}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        until("8 followers", lambda: ctl("clients").count("follower-") >= 8)
        until("the followers to mirror the table", lambda: settled(followers + [daemon.proc]),
              deadline=LOAD_DEADLINE)

        # An address inside the table's middle route, for the search page.
        middle = next(itertools.islice(routes(n), n // 2, None)).split()[2]
        probe = middle.replace(".0/24", ".7")
        url = ctl("dashboard-url").strip()
        base = url.split("/?token=")[0]
        browser = Browser(os.path.join(tmp, "profile"))
        browser.open(url)  # sets the cookie
        pages = [("overview", "/"), ("routes", "/routes"),
                 ("routes, middle page", f"/routes?page={n // 200}"),
                 ("routes, address search", f"/routes?q={probe}"),
                 ("arp", "/arp"), ("clients", "/clients"), ("events", "/events")]
        print(f"# {n} routes, 8 followers; ms from navigation start, {loads} loads a page")
        print("page | responseEnd cold/p50/max | domContentLoaded cold/p50/max "
              "| loadEvent cold/p50/max")
        for name, path in pages:
            runs = []
            for _ in range(loads):
                browser.open(base + path)
                nav = browser.eval(
                    "JSON.stringify(performance.getEntriesByType('navigation')[0])")
                e = json.loads(nav)
                if e.get("responseStatus", 200) != 200:
                    fail(f"{path}: HTTP {e.get('responseStatus')}")
                runs.append((e["responseEnd"], e["domContentLoadedEventEnd"],
                             e["loadEventEnd"]))
            if path.startswith("/routes?") or path == "/routes":
                rows = browser.eval("document.querySelectorAll('tbody tr[data-key]').length")
                want = 1 if "q=" in path else min(n, 100)
                if rows < want:
                    fail(f"{path} shows {rows} rows, not {want}")
                if "q=" in path and not browser.eval(
                        f"document.body.innerText.includes('Longest-prefix match for {probe}')"):
                    fail(f"{path} does not show the longest-prefix match")

            def col(i):
                first = runs[0][i]
                rest = [r[i] for r in runs[1:]] or [first]
                return f"{first:.1f}/{statistics.median(rest):.1f}/{max(rest):.1f}"

            print(f"{name} | {col(0)} | {col(1)} | {col(2)}")
    finally:
        if browser:
            browser.close()
        for f in followers:
            f.kill()
            f.wait(timeout=10)
        daemon.stop()


if __name__ == "__main__":
    main()
