#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools
protocol on a pipe (--remote-debugging-pipe; Python's standard library only, no WebDriver).

Usage: dashboard.py RTMD RTMCTL RTM_CLIENT ARTEFACT_DIR

Starts rtmd on a temporary socket with the dashboard on a free loopback port, then checks as
a user would: a route added with rtmctl is listed on the routes page; a route added through the
page's form shows in `rtmctl route show` and in an rtm-client's output, and so does one with two
paths (the form's nexthop rows); routes added and changed
with rtmctl, and deleted through a row's button, update the open page's rows and pager in place
(live stream, no reload); the clients page lists the rtm-client and drops it once it ends; a
change without the token header, a cross-site form post, a
request without a token and a change by a uid that may not change tables are refused; a flush asks for confirmation naming the count. Saves a screenshot of
each page in ARTEFACT_DIR. Every process has a deadline and is killed by its handle.
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEADLINE = 20.0


def fail(msg):
    print(f"browser test: FAIL: {msg}", file=sys.stderr)
    raise SystemExit(1)


def until(what, cond, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Browser:
    """chromium with the DevTools protocol on fds 3 (to it) and 4 (from it)."""

    def __init__(self, profile):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def child_fds():
            # Move both out of the way first: either may already be 3 or 4.
            a = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        exe = shutil.which("chromium") or fail("chromium is not installed")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
            close_fds=False, preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        os.set_blocking(self.from_r, False)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                fail("the browser did not answer in time")
            try:
                chunk = os.read(self.from_r, 65536)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                fail("the browser closed its pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + DEADLINE
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    fail(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def pump(self):
        """Reads the events waiting on the pipe."""
        while True:
            try:
                chunk = os.read(self.from_r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        while b"\0" in self.buf:
            msg, self.buf = self.buf.split(b"\0", 1)
            self.events.append(json.loads(msg))

    def take(self, method):
        self.pump()
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        return None

    def open(self, url):
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        until(f"{url} to load", lambda: self.take("Page.loadEventFired"))

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True})
        if "exceptionDetails" in r:
            fail(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


class Rtmd:
    """rtmd on a socket and shm dir in a temporary directory of its own, with the dashboard on a
    free loopback port; `ctl` runs rtmctl against it (with a deadline), `stop` kills it by its
    handle and removes the directory (kept with RTM_KEEP_BROWSER_TMP set)."""

    def __init__(self, rtmd, rtmctl, name, extra):
        self.rtmctl = rtmctl
        self.tmp = tempfile.mkdtemp(prefix=f"rtm-{name}-")
        os.chmod(self.tmp, 0o755)  # a check may run rtmctl as another uid
        self.sock = os.path.join(self.tmp, "rtm.sock")
        shm = os.path.join(self.tmp, "shm")
        os.mkdir(shm)
        self.log = open(os.path.join(self.tmp, "rtmd.log"), "w")
        self.proc = subprocess.Popen(
            [rtmd, "--socket", self.sock, "--shm-dir", shm, "--instance", name,
             "--http-listen", "127.0.0.1:0", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_ready(self):
        until("rtmd's socket", lambda: os.path.exists(self.sock))
        until("rtmd to answer", lambda: subprocess.run(
            [self.rtmctl, "--socket", self.sock, "status"], capture_output=True,
            timeout=DEADLINE).returncode == 0)

    def ctl(self, *args, check=True):
        r = subprocess.run([self.rtmctl, "--socket", self.sock, *args], capture_output=True,
                           text=True, timeout=DEADLINE)
        if check and r.returncode != 0:
            fail(f"rtmctl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=DEADLINE)
        self.log.close()
        if os.environ.get("RTM_KEEP_BROWSER_TMP"):
            print(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    rtmd, rtmctl, client, artefacts = sys.argv[1:5]
    os.makedirs(artefacts, exist_ok=True)
    daemon = Rtmd(rtmd, rtmctl, "browser",
                  ["--route-capacity", "8192", "--arp-capacity", "1024", "--socket-mode", "0666"])
    tmp, sock, ctl = daemon.tmp, daemon.sock, daemon.ctl
    browser = None
    watcher = None

    try:
        daemon.wait_ready()
        ctl("route", "add", "10.50.0.0/16", "via", "192.0.2.1")
        url = ctl("dashboard-url").strip()
        base = url.split("/?token=")[0]

        # Without a token: refused.
        try:
            urllib.request.urlopen(base + "/routes", timeout=DEADLINE)
            fail("/routes without a token was served")
        except urllib.error.HTTPError as e:
            if e.code != 401:
                fail(f"/routes without a token: {e.code}")

        browser = Browser(os.path.join(tmp, "profile"))
        browser.open(url)  # sets the cookie, redirects to the overview
        if "Overview" not in browser.eval("document.title"):
            fail(f"the token URL did not open the overview: {browser.eval('document.title')}")
        until("the overview's rate chart", lambda: "now:" in browser.eval(
            "document.getElementById('rates-now').textContent"))
        browser.screenshot(os.path.join(artefacts, "overview.png"))

        browser.open(base + "/routes")
        rows = browser.eval("document.querySelector('#routes').innerText")
        if "10.50.0.0/16" not in rows:
            fail(f"the routes page does not list the route rtmctl added: {rows}")

        # A subscriber (`rtm-client`) that sees what the page does.
        watch_out = os.path.join(tmp, "watch.out")
        watcher = subprocess.Popen([client, "--socket", sock, "--name", "browser-test"],
                                   stdout=open(watch_out, "w"), stderr=subprocess.DEVNULL)
        until("the subscriber's sync", lambda: "sync-done route" in open(watch_out).read())

        # Add through the form.
        browser.eval("""(() => {
            const f = document.getElementById('route-form');
            f.prefix.value = '10.60.0.0/16'; f.via.value = '192.0.2.2'; f.metric.value = '5';
            f.requestSubmit(); return true; })()""")
        until("the form's route in `rtmctl route show`",
              lambda: "10.60.0.0/16 via 192.0.2.2 metric 5" in ctl("route", "show"))
        until("the form's route on the page", lambda: "10.60.0.0/16" in browser.eval(
            "document.querySelector('#routes')?.innerText ?? ''"))
        until("the form's route in the watcher's output",
              lambda: "create route 10.60.0.0/16 via 192.0.2.2" in open(watch_out).read())

        # A bad value: the CLI's message on the page, nothing changed.
        browser.eval("""(() => {
            const f = document.getElementById('route-form');
            f.prefix.value = '10.61.0.1/16'; f.via.value = '192.0.2.2';
            f.requestSubmit(); return true; })()""")
        until("the validation message", lambda: "host bits are set" in browser.eval(
            "document.querySelector('.result').textContent"))

        # A route with two paths: the form's nexthop rows (`add nexthop`), each with its via,
        # dev and weight. (Shared memory does not publish next hops yet, so what the daemon
        # applied is read from its log; the prefix shows in `rtmctl route show`.)
        browser.eval("""(() => {
            const f = document.getElementById('route-form');
            f.prefix.value = '10.62.0.0/16'; f.via.value = ''; f.dev.value = '';
            f.metric.value = '';
            const add = document.getElementById('add-hop');
            add.click(); add.click();
            const rows = f.querySelectorAll('.hop-row');
            rows[0].querySelector('[name="hop-via"]').value = '192.0.2.1';
            rows[0].querySelector('[name="hop-dev"]').value = 'eth0';
            rows[1].querySelector('[name="hop-via"]').value = '192.0.2.2';
            rows[1].querySelector('[name="hop-weight"]').value = '3';
            f.requestSubmit(); return true; })()""")
        applied = ("change=RouteAdd(Route(10.62.0.0/16 nexthop via 192.0.2.1 dev eth0 weight 1 "
                   "nexthop via 192.0.2.2 weight 3))")
        until("the form's multipath route in rtmd's log",
              lambda: applied in open(daemon.log.name).read())
        until("the form's multipath route in `rtmctl route show`",
              lambda: "10.62.0.0/16" in ctl("route", "show"))
        # A weight out of range: rtmctl's message on the page.
        browser.eval("""(() => {
            const f = document.getElementById('route-form');
            f.prefix.value = '10.63.0.0/16';
            f.querySelectorAll('.hop-row')[1].querySelector('[name="hop-weight"]').value = '300';
            f.requestSubmit(); return true; })()""")
        until("the weight's message", lambda: 'invalid weight "300"' in browser.eval(
            "document.querySelector('.result').textContent"))
        if "10.63.0.0/16" in ctl("route", "show"):
            fail("a route with a weight of 300 was applied")
        ctl("route", "del", "10.62.0.0/16")  # the rows checked below are rtmctl's
        browser.eval("""(() => {
            for (const r of document.querySelectorAll('.hop-row')) r.querySelector('button').click();
            return document.querySelectorAll('.hop-row').length === 0; })()""")
        browser.screenshot(os.path.join(artefacts, "routes.png"))

        # Live: routes added, changed and deleted with rtmctl update the open page's rows in
        # place, in key order, without a reload (a reload would drop the marker).
        browser.eval("window.rtmMarker = 'kept'; true")
        keys = "[...document.querySelectorAll('#routes tbody tr')].map(r => r.dataset.key)"
        ctl("route", "add", "10.70.0.0/16", "dev", "eth0")
        ctl("route", "add", "10.55.0.0/16", "dev", "eth0")
        until("rtmctl's routes on the open page, in order", lambda: browser.eval(keys) ==
              ["10.50.0.0/16", "10.55.0.0/16", "10.60.0.0/16", "10.70.0.0/16"])
        pager = "document.querySelector('.pager').textContent"
        until("the pager counting them", lambda: browser.eval(pager).startswith("1 to 4 of 4"))
        ctl("route", "change", "10.55.0.0/16", "via", "192.0.2.9", "metric", "7")
        row = "document.querySelector('#routes tr[data-key=\"10.55.0.0/16\"]')?.innerText ?? ''"
        until("the changed route's row", lambda: "192.0.2.9" in browser.eval(row)
              and "7" in browser.eval(row))
        # Delete through the row's button.
        browser.eval("document.querySelector('button[data-del-route=\"10.55.0.0/16\"]')"
                     ".click(); true")
        until("the deleted route's row gone", lambda: browser.eval(keys) ==
              ["10.50.0.0/16", "10.60.0.0/16", "10.70.0.0/16"])
        until("the pager counting 3", lambda: browser.eval(pager).startswith("1 to 3 of 3"))
        if "10.55.0.0/16" in ctl("route", "show"):
            fail("the delete button did not delete 10.55.0.0/16")
        until("the delete in the watcher's output",
              lambda: "delete route 10.55.0.0/16" in open(watch_out).read())
        if browser.eval("window.rtmMarker ?? 'reloaded'") != "kept":
            fail("the routes page reloaded instead of updating its rows")

        # The cookie alone (no token header) changes nothing.
        status = browser.eval("""fetch('/api/change', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({table: 'route', op: 'add', prefix: '10.80.0.0/16', dev: 'eth0'})
            }).then(r => r.status)""")
        if status != 403:
            fail(f"a change without the token header got {status}")
        if "10.80.0.0/16" in ctl("route", "show"):
            fail("a change without the token header was applied")

        # A cross-site form post (from a page of another origin) changes nothing.
        browser.open("about:blank")
        browser.eval(f"""(() => {{
            const f = document.createElement('form');
            f.method = 'POST'; f.action = '{base}/api/change';
            const i = document.createElement('input');
            i.name = 'table'; i.value = 'route'; f.append(i);
            document.body.append(f); f.submit(); return true; }})()""")
        until("the cross-site post's answer", lambda: browser.take("Page.loadEventFired"))
        time.sleep(0.3)
        if len(ctl("route", "show").splitlines()) != 3:
            fail(f"a cross-site post changed the table: {ctl('route', 'show')}")

        # A uid that may not change tables gets a read-only token (root only: setpriv).
        if os.geteuid() == 0:
            # A copy uid 65534 can run whatever the checkout's permissions are.
            their_ctl = os.path.join(tmp, "rtmctl")
            shutil.copy(rtmctl, their_ctl)
            os.chmod(their_ctl, 0o755)
            r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534",
                                "--clear-groups", their_ctl, "--socket", sock, "dashboard-url"],
                               capture_output=True, text=True, timeout=DEADLINE)
            if r.returncode != 0:
                fail(f"dashboard-url as uid 65534: {r.stderr}")
            browser.open(r.stdout.strip())
            browser.open(base + "/routes")
            if "read-only" not in browser.eval("document.querySelector('.who').textContent"):
                fail("uid 65534's page does not say read-only")
            if browser.eval("document.getElementById('route-form') !== null"):
                fail("uid 65534's page offers the change form")
            status = browser.eval("""fetch('/api/change', {method: 'POST',
                headers: {'Content-Type': 'application/json', 'X-Rtm-Token':
                  document.querySelector('meta[name="rtm-token"]').content},
                body: JSON.stringify({table: 'route', op: 'del', prefix: '10.50.0.0/16'})
                }).then(r => r.status)""")
            if status != 403:
                fail(f"uid 65534's change got {status}")
            if "10.50.0.0/16" not in ctl("route", "show"):
                fail("uid 65534 deleted a route")
            browser.open(url)  # back to the admin's session
        else:
            print("browser test: the non-admin check needs root (setpriv); skipped")

        # ARP through the form.
        browser.open(base + "/arp")
        browser.eval("""(() => {
            const f = document.getElementById('arp-form');
            f.mac.value = '00:11:22:33:44:55'; f.ip.value = '192.0.2.40';
            f.requestSubmit(); return true; })()""")
        until("the ARP entry in `rtmctl arp show`",
              lambda: "192.0.2.40" in ctl("arp", "show"))
        until("the ARP entry in the page's rows (live, no reload)",
              lambda: "192.0.2.40" in browser.eval(
                  "document.querySelector('#arps tbody').textContent"))
        browser.screenshot(os.path.join(artefacts, "arp.png"))

        # Clients, live: the watcher is listed, and goes when it ends.
        browser.open(base + "/clients")
        pid_cell = f"<td>{watcher.pid}</td>"
        clients_html = "document.querySelector('#clients tbody').innerHTML"
        if pid_cell not in browser.eval(clients_html):
            fail(f"the clients page does not list the watcher (pid {watcher.pid})")
        browser.screenshot(os.path.join(artefacts, "clients.png"))
        watcher.kill()
        watcher.wait(timeout=DEADLINE)
        until("the ended watcher gone from the open clients page",
              lambda: pid_cell not in browser.eval(clients_html))
        browser.open(base + "/events")
        until("the event stream", lambda: browser.eval(
            "document.getElementById('stream-state').textContent") == "live")
        ctl("route", "add", "10.90.0.0/16", "dev", "eth0")
        until("the change on the events page", lambda: "10.90.0.0/16" in browser.eval(
            "document.querySelector('#events').innerText"))
        browser.screenshot(os.path.join(artefacts, "events.png"))

        # Flush: the confirmation names the count.
        browser.open(base + "/")
        routes = len(ctl("route", "show").split("\n")) - 1
        browser.call("Runtime.evaluate", {"expression":
            "setTimeout(() => document.querySelector('[data-flush=\"route\"]').click(), 0)"})
        dialog = until("the flush confirmation",
                       lambda: browser.take("Page.javascriptDialogOpening"))
        text = dialog["params"]["message"]
        if f"delete all {routes} routes" not in text:
            fail(f"the confirmation does not name the {routes} routes: {text!r}")
        browser.call("Page.handleJavaScriptDialog", {"accept": True})
        until("the flush", lambda: ctl("route", "show").strip() == "")
        print(f"browser test: ok ({len(os.listdir(artefacts))} screenshots in {artefacts})")
    finally:
        if watcher:
            watcher.kill()
            watcher.wait(timeout=DEADLINE)
        if browser:
            browser.close()
        daemon.stop()


if __name__ == "__main__":
    main()
