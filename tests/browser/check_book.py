"""Browser test of the built book (run by `make test-browser`).

1. Builds the book in quick mode into its own folder, with its own execution cache:
       NPGAN_QUICK=1 jupyter-book build . --path-output _build_quick -W -n --keep-going --all
   (the cache ignores environment variables, so quick outputs must never share
   _build/.jupyter_cache with the full book; --all re-reads every page, so that warnings
   of unchanged pages are not skipped, while notebooks still come from the cache).
2. Serves _build_quick/_build/html on 127.0.0.1 (ephemeral port) and opens every page in
   headless Debian chromium, through a small harness page that loads the page in an
   iframe, waits for MathJax and the images, and writes what it found into its own DOM
   (read back with --dump-dom). Chromium's proxy is a local "tripwire" that refuses and
   records every request to another host.
3. Checks each page: no request answered with 4xx/5xx, no request to another host, every
   img/script/link/iframe resource in the DOM is local and loads, every <img> has
   naturalWidth > 0, math is typeset (mjx-container present wherever the page has math,
   no MathJax error, no raw \\( \\[ $$ left in the text), no stderr output; the search page
   finds 判别器, 生成器 and 生成对抗网络; pages with math also typeset when opened over
   file:// (no server). A screenshot of each page goes to _build_quick/screenshots/.
Prints one line per page and 'N passed, M failed'; exits 1 on any failure.

    python tests/browser/check_book.py               # build, then check every page
    python tests/browser/check_book.py --no-build    # check the existing quick build
    python tests/browser/check_book.py --html _build/html --no-build   # check the full book
"""

import argparse
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICK_OUT = REPO / "_build_quick"
SEARCH_TERMS = ["判别器", "生成器", "生成对抗网络"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                  "--no-pings", "--disable-domain-reliability",
                  "--disable-client-side-phishing-detection",
                  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"]
# Chromium's own service hosts (if it ever calls home despite the flags above, that is
# not a page's request; everything else reaching the tripwire is a failure).
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)(:\d+)?$")

HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>book check harness</title></head>
<body>
<pre id="result">pending</pre>
<iframe id="page" style="width:1280px;height:4000px;border:0"></iframe>
<script>
const params = new URLSearchParams(location.search);
const target = params.get("page");
const search = params.get("search") === "1";
const out = document.getElementById("result");
const frame = document.getElementById("page");
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function run() {
  await new Promise(resolve => { frame.onload = resolve; frame.src = target; });
  const w = frame.contentWindow, d = frame.contentDocument;
  for (const img of d.images) { if (img.loading === "lazy") img.loading = "eager"; }
  let mathjax = "absent";
  if (w.MathJax && w.MathJax.startup && w.MathJax.startup.promise) {
    mathjax = "timeout";
    await Promise.race([w.MathJax.startup.promise.then(() => { mathjax = "done"; },
                                                        e => { mathjax = "error: " + e; }),
                        sleep(20000)]);
  }
  for (let i = 0; i < 200 && ![...d.images].every(im => im.complete); i++) await sleep(100);
  let hits = null, summary = null;
  if (search) {
    for (let i = 0; i < 200; i++) {
      summary = d.querySelector("#search-results .search-summary");
      if (summary && summary.textContent.trim()) break;   // filled in when the search ends
      await sleep(100);
    }
    hits = d.querySelectorAll("#search-results ul.search li").length;
    summary = summary ? summary.textContent.trim() : null;
  }
  const imgs = [...d.images].map(im => ({src: im.getAttribute("src") || "", complete: im.complete,
                                        width: im.naturalWidth}));
  out.textContent = JSON.stringify({
    url: w.location.href, mathjax, imgs, hits, summary,
    mjx: d.querySelectorAll("mjx-container").length,
    merror: d.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    html: d.documentElement.outerHTML});
}
run().catch(e => { out.textContent = JSON.stringify({error: String(e)}); });
</script>
</body></html>
"""


# ---------------------------------------------------------------- servers

class Log:
    """Requests seen by the book server and the tripwire proxy since the last clear()."""

    def __init__(self):
        self.lock = threading.Lock()
        self.local, self.external = [], []

    def clear(self):
        with self.lock:
            self.local, self.external = [], []

    def take(self):
        with self.lock:
            return list(self.local), list(self.external)


def book_server(root, log):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            if self.path.startswith("/__check__/harness.html"):
                body = HARNESS.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_request(self, code="-", size="-"):
            if not self.path.startswith("/__check__/"):
                with log.lock:
                    log.local.append((int(code) if str(code).isdigit() else 0, self.path))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def tripwire_proxy(log):
    """An HTTP proxy that refuses everything and records where the browser tried to go."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _refuse(self):
            target = self.path if self.command == "CONNECT" else urllib.parse.urlsplit(self.path).netloc
            with log.lock:
                log.external.append((self.command, target, self.path))
            try:
                self.send_error(403, "external requests are not allowed in the book test")
            except OSError:  # the browser gave up on the request first: nothing to answer
                pass

        do_GET = do_POST = do_HEAD = do_CONNECT = do_PUT = do_OPTIONS = _refuse

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- chromium

class Chromium:
    def __init__(self, binary, proxy_port, budget_ms):
        self.binary = binary
        self.proxy_port = proxy_port
        self.budget_ms = budget_ms
        self.profile = tempfile.mkdtemp(prefix="check-book-chromium-")

    def run(self, url, *extra, timeout=120):
        cmd = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
               f"--proxy-server=http://127.0.0.1:{self.proxy_port}",
               f"--virtual-time-budget={self.budget_ms}", "--window-size=1280,1600",
               *extra, url]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"chromium did not finish within {timeout} s"
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            return None, f"chromium exited with {proc.returncode}: {' | '.join(err)}"
        return proc.stdout.decode("utf-8", "replace"), None

    def dump_dom(self, url):
        return self.run(url, "--dump-dom")

    def screenshot(self, url, path):
        _, err = self.run(url, f"--screenshot={path}")
        if err is None and not (path.is_file() and path.stat().st_size > 0):
            err = "no screenshot written"
        return err

    def close(self):
        shutil.rmtree(self.profile, ignore_errors=True)


# ---------------------------------------------------------------- page checks

class Resources(HTMLParser):
    """The resource URLs of a page: img/script/iframe/source src and link href
    (stylesheets, icons, preloads; not navigation links such as rel=next)."""

    NAV_RELS = {"next", "prev", "index", "search", "canonical", "alternate", "author",
                "license", "help", "top", "up", "first", "last", "contents", "copyright",
                "glossary", "start", "chapter", "section", "subsection", "appendix"}

    def __init__(self):
        super().__init__()
        self.urls, self.skip_depth, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("img", "script", "iframe", "source", "embed", "video", "audio", "track"):
            if a.get("src"):
                self.urls.append((tag, a["src"]))
            for part in (a.get("srcset") or "").split(","):
                if part.strip():
                    self.urls.append((tag, part.split()[0]))
        elif tag == "link" and a.get("href"):
            rels = set((a.get("rel") or "").lower().split())
            if not rels or not rels <= self.NAV_RELS:
                self.urls.append((tag, a["href"]))
        elif tag == "object" and a.get("data"):
            self.urls.append((tag, a["data"]))
        if tag in ("script", "style", "pre", "code", "textarea", "mjx-container", "kbd",
                   "samp", "mjx-assistive-mml"):
            self.skip_depth += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre", "code", "textarea", "mjx-container", "kbd",
                   "samp", "mjx-assistive-mml") and self.skip_depth:
            self.skip_depth -= 1

    def handle_data(self, data):
        if not self.skip_depth:
            self.text.append(data)


RAW_MATH = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{")
CSS_URL = re.compile(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)", re.I)


def fetch_status(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError) as e:
        return str(e)


def check_page(rel, html_root, base, browser, shots, log, fetched, file_check):
    """Open one page; returns (list of problems, one-line summary details)."""
    problems, notes = [], []
    is_search = rel == "search.html"
    page_url = f"{base}/{urllib.parse.quote(rel)}"
    source = (html_root / rel).read_text(encoding="utf-8", errors="replace")
    n_math = len(re.findall(r'class="math[ "]', source))

    targets = ([f"search.html?q={urllib.parse.quote(t)}" for t in SEARCH_TERMS]
               if is_search else [rel])
    for target in targets:
        log.clear()
        harness = (f"{base}/__check__/harness.html?page="
                   + urllib.parse.quote("/" + target, safe="") + ("&search=1" if is_search else ""))
        dom, err = browser.dump_dom(harness)
        local, external = log.take()
        if err:
            problems.append(f"{target}: {err}")
            continue
        m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
        try:
            result = json.loads(html.unescape(m.group(1))) if m else {"error": "no result"}
        except json.JSONDecodeError as e:
            result = {"error": f"harness output is not JSON ({e})"}
        if "error" in result:
            problems.append(f"{target}: harness: {result['error']}")
            continue

        for code, path in local:
            if path == "/favicon.ico":      # asked for by chromium itself; the book has none
                continue
            if code >= 400 or code == 0:
                problems.append(f"HTTP {code or '?'} for {path}")
        for method, host, path in external:
            if not BROWSER_HOSTS.search(host):
                problems.append(f"request to another host: {method} {path}")

        parser = Resources()
        parser.feed(result["html"])
        page_dir_url = urllib.parse.urljoin(base + "/", target)
        for tag, url in parser.urls:
            if url.startswith(("data:", "blob:", "about:", "javascript:")):
                continue
            absolute = urllib.parse.urljoin(page_dir_url, url)
            if urllib.parse.urlsplit(absolute).netloc != urllib.parse.urlsplit(base).netloc:
                problems.append(f"<{tag}> loads from another host: {url}")
                continue
            key = absolute.split("#")[0]
            if key not in fetched:
                fetched[key] = fetch_status(key)
            if fetched[key] != 200:
                problems.append(f"<{tag}> {url}: HTTP {fetched[key]}")
        # CSS inserted into the page (MathJax's @font-face rules, inline styles)
        for url in set(CSS_URL.findall(re.sub(r"<script.*?</script>", "", result["html"],
                                              flags=re.S))):
            absolute = urllib.parse.urljoin(page_dir_url, url)
            if urllib.parse.urlsplit(absolute).netloc != urllib.parse.urlsplit(base).netloc:
                problems.append(f"CSS url() from another host: {url}")

        bad_imgs = [i["src"][:80] for i in result["imgs"] if not (i["complete"] and i["width"] > 0)]
        if bad_imgs:
            problems.append(f"{len(bad_imgs)} image(s) not shown: {', '.join(bad_imgs[:3])}")
        if re.search(r'class="[^"]*\boutput stderr\b', result["html"]):
            problems.append("a cell's stderr output is shown on the page")

        if is_search:
            if not result["hits"]:
                problems.append(f"search for {urllib.parse.unquote(target.split('q=')[1])} "
                                f"found nothing ({result['summary']})")
            notes.append(f"{urllib.parse.unquote(target.split('q=')[1])}: {result['hits']} hits")
            continue

        if n_math:
            if result["mathjax"] != "done":
                problems.append(f"MathJax {result['mathjax']} on a page with {n_math} formulas")
            if result["mjx"] < n_math:
                problems.append(f"only {result['mjx']} of {n_math} formulas typeset")
            if result["merror"]:
                problems.append(f"{result['merror']} MathJax error(s) (bad TeX)")
            # MathJax shows an undefined macro as red text instead of failing
            undefined = sorted(set(re.findall(r'<mtext mathcolor="red">([^<]*)</mtext>',
                                              result["html"])))
            if undefined:
                problems.append(f"undefined TeX macro(s): {', '.join(undefined)[:200]}")
        text = "".join(parser.text)
        raw = RAW_MATH.search(text)
        if raw:
            around = text[max(0, raw.start() - 30):raw.end() + 30].replace("\n", " ")
            problems.append(f"raw TeX left in the text: …{around}…")
        figure_as_text = re.search(r"<Figure size [^>]*>", text)
        if figure_as_text:  # a figure the kernel could not render (e.g. MPLBACKEND=Agg)
            problems.append(f"a figure shown as text instead of an image: {figure_as_text.group(0)}")
        notes.append(f"math {result['mjx']}/{n_math}, images {len(result['imgs'])}, "
                     f"resources {len(parser.urls)}")

    shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
    log.clear()
    shot_url = page_url + (f"?q={urllib.parse.quote(SEARCH_TERMS[0])}" if is_search else "")
    err = browser.screenshot(shot_url, shot)
    local, external = log.take()
    if err:
        problems.append(f"screenshot: {err}")
    problems += [f"HTTP {c} for {p} (screenshot run)" for c, p in local
                 if c >= 400 and p != "/favicon.ico"]
    problems += [f"request to another host: {m} {p} (screenshot run)"
                 for m, h, p in external if not BROWSER_HOSTS.search(h)]

    if file_check and n_math:
        log.clear()
        dom, err = browser.dump_dom((html_root / rel).resolve().as_uri())
        _, external = log.take()
        if err:
            problems.append(f"file://: {err}")
        else:
            if "<mjx-container" not in dom:
                problems.append("file://: math not typeset when the page is opened from disk")
            problems += [f"file://: request to another host: {m} {p}"
                         for m, h, p in external if not BROWSER_HOSTS.search(h)]
        notes.append("file:// ok" if not err and "<mjx-container" in dom else "file:// FAILED")
    return problems, "; ".join(notes)


# ---------------------------------------------------------------- main

def build(out_dir):
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", ".", "--path-output",
           str(out_dir), "-W", "-n", "--keep-going", "--all"]
    env = dict(os.environ, NPGAN_QUICK="1")
    env.pop("MPLBACKEND", None)  # Agg in a kernel turns every glued figure into "<Figure size ...>" text
    print(f"$ NPGAN_QUICK=1 {' '.join(cmd)}", flush=True)
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    warnings = [line for line in output.splitlines()
                if re.search(r"WARNING|ERROR|CRITICAL", line)
                and not re.search(r"IPKernelApp|MissingIDFieldWarning", line)]
    print(f"quick build: exit {proc.returncode} in {time.time() - start:.0f} s, "
          f"{len(warnings)} warning line(s)")
    if proc.returncode != 0 or warnings:
        counts = {}
        for line in warnings:
            counts[line] = counts.get(line, 0) + 1
        shown = [f"{line}  (×{n})" if n > 1 else line for line, n in counts.items()]
        print("\n".join(shown[:40] or output.splitlines()[-40:]))
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-build", action="store_true", help="check the existing build")
    parser.add_argument("--fresh", action="store_true",
                        help="delete the quick build (and its execution cache) first")
    parser.add_argument("--out", type=Path, default=QUICK_OUT,
                        help="quick build folder (default _build_quick)")
    parser.add_argument("--html", type=Path, help="HTML folder to check "
                        "(default OUT/_build/html)")
    parser.add_argument("--only", help="check only pages whose path contains this text")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--budget", type=int, default=30000,
                        help="chromium --virtual-time-budget in ms (default 30000)")
    parser.add_argument("--no-file-check", action="store_true",
                        help="skip opening the math pages over file://")
    args = parser.parse_args(argv)

    out = args.out if args.out.is_absolute() else REPO / args.out
    if args.fresh and not args.no_build:
        shutil.rmtree(out / "_build", ignore_errors=True)
    if not args.no_build and not build(out):
        print("0 passed, 1 failed (the quick build)")
        return 1
    html_root = args.html or out / "_build" / "html"
    html_root = html_root if html_root.is_absolute() else REPO / html_root
    if not (html_root / "index.html").is_file():
        print(f"no built book at {html_root} (index.html missing): run without --no-build")
        return 1
    if not shutil.which(args.chromium):
        print(f"chromium not found ({args.chromium}): `make test-browser` installs Debian's "
              "chromium through the $(STAMPS)/apt rule")
        return 1
    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    pages = sorted(str(p.relative_to(html_root)) for p in html_root.rglob("*.html")
                   if not p.relative_to(html_root).parts[0].startswith(("_static", "_sources",
                                                                       "_images")))
    if args.only:
        pages = [p for p in pages if args.only in p]
    if "search.html" not in pages and not args.only:
        print("search.html missing from the build")
        return 1

    log = Log()
    server, proxy = book_server(html_root, log), tripwire_proxy(log)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    browser = Chromium(args.chromium, proxy.server_address[1], args.budget)
    print(f"serving {html_root.relative_to(REPO) if html_root.is_relative_to(REPO) else html_root}"
          f" at {base}; {len(pages)} pages; screenshots in {shots.relative_to(REPO) if shots.is_relative_to(REPO) else shots}")
    passed = failed = 0
    fetched = {}
    try:
        for rel in pages:
            start = time.time()
            problems, details = check_page(rel, html_root, base, browser, shots, log, fetched,
                                           not args.no_file_check)
            status = "PASS" if not problems else "FAIL"
            print(f"{status} {rel:<40} {details} ({time.time() - start:.1f} s)", flush=True)
            for p in problems[:12]:
                print(f"     - {p}")
            if len(problems) > 12:
                print(f"     - … and {len(problems) - 12} more")
            passed, failed = passed + (not problems), failed + bool(problems)
    finally:
        browser.close()
        server.shutdown()
        proxy.shutdown()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
