"""Browser test of the generator widgets in the built book (run by `make test-browser`,
after check_book.py has built the quick book).

Drives Debian's chromium through Selenium and Debian's chromium-driver, with the
flags of check_book.py and its tripwire proxy (every request to another host is
refused and recorded). For every page of the build that holds a widget
(data-npgan-demo="<model>"), over http (127.0.0.1) and over file://:

* every widget reaches data-state="ready" (first images drawn) within 1 s of opening
  the page (the better of two openings, if the first is slower: the machine may be
  busy); window.npganDemo lists the model and names its checkpoint, a file under
  $NPGAN_DATA;
* window.npganDemo.generate(model, v) equals npgan's to_uint8(G(v)) of that checkpoint
  within 2 grey levels on every pixel, for fixed inputs spread over what the
  widgets can ask for (npgan.export.probe_inputs); one image takes under 5 ms (the
  fastest of 50 runs of 4);
* the widget's canvas shows exactly npgan's images of the inputs it reports;
* CGAN: clicking digit d draws G(z, d) for the same z (and, for a model trained as long
  as the book trains it, npgan's MNIST evaluator reads d in ≥ 90 % of the images; a
  quick run's figure is printed as INFO); "同样的噪声，换个数字" keeps z
  and moves to d + 1; → moves between the digit buttons; "换一批噪声" changes z;
  GAN: the slider (keys Home / End) walks from the path's first to its last image;
  InfoGAN: the c1 buttons and the c2/c3 sliders change G's input accordingly;
* a widget that switches between generators (data-npgan-switch, 21.7's InfoGAN without
  and with labels): every generator it names passes the generate() checks above, and
  each switch button redraws the same inputs with that generator, npgan's images of
  its checkpoint (a screenshot each);
* no request leaves the machine, no local request fails.
A screenshot of each widget goes to OUT/screenshots/demo-<model>.png.
Prints one line per check and 'N passed, M failed'; exits 1 on any failure.

    python tests/browser/check_demo.py                     # the quick build in _build_quick
    python tests/browser/check_demo.py --out _build_h4     # another quick build folder
    python tests/browser/check_demo.py --html _build/html  # the full book
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import (BROWSER_HOSTS, CHROMIUM_FLAGS, QUICK_OUT, REPO, Log,  # noqa: E402
                        book_server, tripwire_proxy)

MAX_GREY = 2          # grey levels, on every pixel
MAX_MS_PER_IMAGE = 5
MAX_READY_MS = 1000   # first images, counted from the opening of the page
N_INPUTS = 24
SIDE, PAD = 28, 2


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what, detail=""):
        print(f"{'PASS' if ok else 'FAIL'} {what}" + (f": {detail}" if detail else ""), flush=True)
        self.passed, self.failed = self.passed + bool(ok), self.failed + (not ok)
        return ok


def make_driver(chromium, chromedriver, proxy_port, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}", "--window-size=1280,1600",
                                  f"--proxy-server=http://127.0.0.1:{proxy_port}"]:
        options.add_argument(flag)
    # no preconnect to the default search engine (Debian's chromium: DuckDuckGo) at start
    options.add_experimental_option("prefs", {"net.network_prediction_options": 2})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def settle(driver, log, quiet=1.5, limit=15):
    """Let the browser make its own start-up calls (refused by the tripwire: update
    checks, a preconnect to the default search engine) before any page is checked:
    wait on about:blank until no request has come for ``quiet`` seconds."""
    driver.get("about:blank")
    end, seen, last = time.time() + limit, -1, time.time()
    while time.time() < end:
        n = len(log.take()[1])
        if n != seen:
            seen, last = n, time.time()
        elif time.time() - last > quiet:
            break
        time.sleep(0.1)
    log.clear()


def wait_for_widgets(driver, timeout=30):
    """{model: (state, ready ms, work ms)} once every widget has left its initial state."""
    script = """return [...document.querySelectorAll('[data-npgan-demo]')].map(r =>
                  [r.dataset.npganDemo, r.dataset.state || '', Number(r.dataset.readyMs || -1),
                   Number(r.dataset.workMs || -1)]);"""
    end = time.time() + timeout
    while True:
        rows = driver.execute_script(script)
        if rows and all(row[1] for row in rows) or time.time() > end:
            return {name: (state, ms, work) for name, state, ms, work in rows}
        time.sleep(0.05)


def root_of(driver, name):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, f'[data-npgan-demo="{name}"]')


def widget_view(driver, root):
    """(inputs the widget reports, its canvas cut into 28×28 uint8 tiles)."""
    data = driver.execute_script("""
        const w = arguments[0].npganWidget, c = w.canvas;
        const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, grey = [];
        for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
        return {inputs: w.inputs(), cols: w.cols, width: c.width, height: c.height, grey};""", root)
    canvas = np.array(data["grey"], dtype=np.uint8).reshape(data["height"], data["width"])
    tiles = []
    for k in range(len(data["inputs"])):
        r, c = divmod(k, data["cols"])
        top, left = PAD + r * (SIDE + PAD), PAD + c * (SIDE + PAD)
        tiles.append(canvas[top:top + SIDE, left:left + SIDE].reshape(-1))
    return np.array(data["inputs"], dtype=np.float32), np.array(tiles)


class Reference:
    """npgan's own G of the checkpoint a page names."""

    def __init__(self):
        self.models = {}

    def model(self, source):
        from npgan import checkpoint
        from npgan.data import data_dir

        if source not in self.models:
            model, meta = checkpoint.load(data_dir() / source)
            model.epoch_trained = meta.get("epoch") or 0
            self.models[source] = model
        return self.models[source]

    def images(self, source, inputs):
        from npgan.plot import to_uint8
        return to_uint8(self.model(source).sampler(np.asarray(inputs, dtype=np.float32))).reshape(len(inputs), -1)


def grey_gap(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def check_generate(driver, check, ref, where, name, source, figures):
    from npgan import export

    model = ref.model(source)
    x = export.probe_inputs(model, N_INPUTS, seed=2024)
    got = np.array(driver.execute_script(
        "return arguments[1].map(v => Array.from(window.npganDemo.generate(arguments[0], v)));",
        name, x.tolist()), dtype=np.uint8)
    gap = grey_gap(got, ref.images(source, x))
    entry = figures.setdefault(name, {})   # a model reached through a switch has no entry yet
    entry["max_grey_gap"] = max(gap, entry.get("max_grey_gap", 0))
    check(gap <= MAX_GREY, f"{where}: generate({name}) = npgan's G of {source}",
          f"largest difference {gap} grey level(s) over {N_INPUTS} × 784 pixels")
    # the fastest of 50 runs of 4 images: the cost of the computation itself, not of
    # the other jobs of a shared machine
    ms = driver.execute_script("""
        const [name, v] = arguments, n = 4, runs = [];
        for (let i = 0; i < 10; i++) window.npganDemo.generate(name, v);
        for (let r = 0; r < 50; r++) {
          const start = performance.now();
          for (let i = 0; i < n; i++) window.npganDemo.generate(name, v);
          runs.push((performance.now() - start) / n);
        }
        return Math.min(...runs);""", name, x[0].tolist())
    figures[name]["ms_per_image"] = ms
    check(ms < MAX_MS_PER_IMAGE, f"{where}: one {name} image in under {MAX_MS_PER_IMAGE} ms",
          f"{ms:.2f} ms")


def check_canvas(driver, check, ref, where, name, source, label, root_name=None):
    inputs, tiles = widget_view(driver, root_of(driver, root_name or name))
    gap = grey_gap(tiles, ref.images(source, inputs))
    check(gap <= MAX_GREY, f"{where}: {name} canvas {label} = npgan's images of its inputs",
          f"{len(inputs)} images, largest difference {gap}")
    return inputs, tiles


def digits_read(check, where, name, model, read):
    """What npgan's MNIST evaluator reads in the drawn images. A check for a model trained
    as long as the book trains it (the full book); for a quick run, only a figure."""
    import npgan.metrics
    from npgan.models import BOOK_EPOCHS

    try:
        evaluator = npgan.metrics.load_evaluator(train=False)
    except FileNotFoundError as err:
        print(f"INFO {where}: no evaluator to read the digits ({err})")
        return
    agree = sum(int((evaluator.predict(tiles.astype(np.float32) / 127.5 - 1) == d).sum())
                for d, tiles in read)
    total = sum(len(tiles) for _, tiles in read)
    text = f"the evaluator reads the asked digit in {agree} of {total} images"
    if model.epoch_trained >= BOOK_EPOCHS.get(name, 0):
        check(agree >= 0.9 * total, f"{where}: {name}'s digit buttons draw those digits", text)
    else:
        print(f"INFO {where}: {text} (a quick run of {model.epoch_trained} epochs: not checked)")


def part_slices(layout):
    out, start = {}, 0
    for part in layout:
        out[part["part"]] = slice(start, start + part["size"])
        start += part["size"]
    return out


def check_switch(driver, check, ref, where, name, sources, shots):
    """The widget's generator buttons: each redraws the same inputs with its model."""
    from selenium.webdriver.common.by import By

    root = root_of(driver, name)
    buttons = root.find_elements(By.CSS_SELECTOR, "button[data-model]")
    if not buttons:
        return
    inputs, _ = widget_view(driver, root)
    for button in buttons[1:] + buttons[:1]:   # the others, then back to the widget's own
        other = button.get_attribute("data-model")
        button.click()
        shown = driver.execute_script("return arguments[0].npganWidget.model()", root)
        new_inputs, _ = check_canvas(driver, check, ref, where, other, sources[other],
                                     f"switched to {other}", root_name=name)
        check(shown == other and np.array_equal(new_inputs, inputs)
              and button.get_attribute("aria-pressed") == "true",
              f"{where}: the button {button.text!r} draws {other} from the same inputs")
        if other != name:
            time.sleep(0.1)
            root.screenshot(str(shots / f"demo-{other}.png"))


def interact(driver, check, ref, page, name, source, layout):
    """Click and type in one widget, checking what it draws each time."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    root = root_of(driver, name)
    parts = part_slices(layout)
    where = f"{page} {name}"
    inputs, tiles = check_canvas(driver, check, ref, where, name, source, "at first")
    button = lambda text: next(b for b in root.find_elements(By.TAG_NAME, "button") if b.text == text)
    key = "label" if "label" in parts else "cat" if "cat" in parts else None
    if key:
        z = parts["z"]
        read = []
        for digit in (3, 8):
            root.find_element(By.CSS_SELECTOR, f'button[data-value="{digit}"]').click()
            new_inputs, new_tiles = check_canvas(driver, check, ref, where, name, source,
                                                 f"after clicking {digit}")
            check(np.all(new_inputs[:, parts[key]].argmax(axis=1) == digit)
                  and np.array_equal(new_inputs[:, z], inputs[:, z])
                  and not np.array_equal(new_tiles, tiles),
                  f"{where}: button {digit} draws {key} = {digit} for the same noises")
            inputs, tiles = new_inputs, new_tiles
            read.append((digit, new_tiles))
        if key == "label":
            digits_read(check, where, name, ref.model(source), read)
        if key == "label":
            button("同样的噪声，换个数字").click()
            new_inputs, _ = check_canvas(driver, check, ref, where, name, source, "after 同样的噪声")
            check(np.all(new_inputs[:, parts[key]].argmax(axis=1) == 9)
                  and np.array_equal(new_inputs[:, z], inputs[:, z]),
                  f"{where}: 同样的噪声，换个数字 keeps z and goes from 8 to 9")
            inputs = new_inputs
        focused = root.find_element(By.CSS_SELECTOR, 'button[data-value][aria-pressed="true"]')
        before = int(focused.get_attribute("data-value"))
        focused.send_keys(Keys.ARROW_RIGHT)
        after = driver.execute_script("return document.activeElement.dataset.value")
        new_inputs, _ = check_canvas(driver, check, ref, where, name, source, "after →")
        n = layout[[p["part"] for p in layout].index(key)]["size"]
        check(after == str((before + 1) % n)
              and np.all(new_inputs[:, parts[key]].argmax(axis=1) == (before + 1) % n),
              f"{where}: → moves from button {before} to {(before + 1) % n} and draws it")
        inputs = new_inputs
        for i, slider in enumerate(root.find_elements(By.CSS_SELECTOR, 'input[type="range"]')):
            slider.send_keys(Keys.END)
            new_inputs, _ = check_canvas(driver, check, ref, where, name, source, f"slider {i} at its end")
            cont = new_inputs[:, parts["cont"]]
            check(np.allclose(cont[:, i], layout[-1]["range"][1])
                  and np.array_equal(new_inputs[:, z], inputs[:, z]),
                  f"{where}: slider {i} (End) sets code {i} to {layout[-1]['range'][1]}, same z",
                  f"codes {np.round(cont[0], 2).tolist()}")
            inputs = new_inputs
        button("换一批噪声").click()
        new_inputs, _ = check_canvas(driver, check, ref, where, name, source, "after 换一批噪声")
        check(not np.array_equal(new_inputs[:, z], inputs[:, z])
              and np.array_equal(new_inputs[:, z.stop:], inputs[:, z.stop:]),
              f"{where}: 换一批噪声 changes z and keeps the codes")
        return
    # plain generator: the noise grid and the walk between two noises
    button("换一批噪声").click()
    new_inputs, new_tiles = check_canvas(driver, check, ref, where, name, source, "after 换一批噪声")
    check(not np.array_equal(new_inputs, inputs), f"{where}: 换一批噪声 draws new noises")
    walk_tiles = lambda selector: driver.execute_script("""
        const c = arguments[0].querySelector(arguments[1]);
        const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, grey = [];
        for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
        return [c.width, grey];""", root, selector)
    width, path = walk_tiles(".npgan-demo-path")
    path = np.array(path, dtype=np.uint8).reshape(-1, width)[PAD:PAD + SIDE]
    first, last = path[:, PAD:PAD + SIDE], path[:, width - PAD - SIDE:width - PAD]
    slider = root.find_element(By.CSS_SELECTOR, 'input[type="range"]')
    for keys, expected, end in ((Keys.HOME, first, "z0 (t = 0)"), (Keys.END, last, "z1 (t = 1)")):
        slider.send_keys(keys)
        w, walk = walk_tiles(".npgan-demo-walk")
        walk = np.array(walk, dtype=np.uint8).reshape(-1, w)[PAD:PAD + SIDE, PAD:PAD + SIDE]
        check(np.array_equal(walk, expected), f"{where}: the slider reaches {end}, the path's end image")
    slider.send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    shown = root.find_element(By.CSS_SELECTOR, ".npgan-demo-slider output").text
    check(shown == "0.02", f"{where}: → moves t by 0.01", f"t = {shown}")


def check_page(driver, check, ref, log, url, page, where, figures, shots):
    log.clear()
    start = time.time()
    driver.get(url)
    states = wait_for_widgets(driver)
    if any(ms > MAX_READY_MS for _, ms, _ in states.values()):
        # a busy machine can hold up one opening: the better of two counts
        driver.get(url)
        again = wait_for_widgets(driver)
        states = {n: min(states[n], again[n], key=lambda s: (s[0] != "ready", s[1])) for n in states}
    for name, (state, ms, work) in states.items():
        check(state == "ready" and 0 <= ms <= MAX_READY_MS,
              f"{where}: {name} widget ready within {MAX_READY_MS} ms of opening the page",
              f"{state} after {ms} ms, of which {work} ms decoding the weights and drawing")
        mode = where.split()[0].rstrip(":/")
        figures.setdefault(name, {}).update({f"ready_ms_{mode}": ms, f"work_ms_{mode}": work})
    info = driver.execute_script("""return {models: window.npganDemo.models,
        sources: Object.fromEntries(window.npganDemo.models.map(m => [m, window.npganDemo.source(m)])),
        sizes: Object.fromEntries(window.npganDemo.models.map(m => [m, window.npganDemo.inputSize(m)])),
        layouts: Object.fromEntries(window.npganDemo.models.map(m => [m, window.npganDemoData[m].input]))};""")
    from npgan.data import data_dir
    switched = [n for n in info["models"] if n not in states]   # reached through a widget's switch
    for name in [*states, *switched]:
        source = info["sources"].get(name)
        if not check(name in info["models"] and source and (data_dir() / source).is_file(),
                     f"{where}: npganDemo has {name}, from a checkpoint under $NPGAN_DATA", str(source)):
            continue
        model = ref.model(source)
        check(info["sizes"][name] == model.G.layers[0].W.shape[0],
              f"{where}: inputSize({name}) is G's input size", str(info["sizes"][name]))
        check_generate(driver, check, ref, where, name, source, figures)
        if where.startswith("http") and name in states:
            root = root_of(driver, name)
            driver.execute_script("arguments[0].scrollIntoView()", root)
            time.sleep(0.8)   # the widget's note adds the measured time per image after 0.5 s
            root.screenshot(str(shots / f"demo-{name}.png"))
            interact(driver, check, ref, page, name, source, info["layouts"][name])
            check_switch(driver, check, ref, f"{page} {name}", name, info["sources"], shots)
    local, external = log.take()
    failed = [f"HTTP {code} {path}" for code, path in local if (code >= 400 or code == 0)
              and path != "/favicon.ico"]
    outside = [f"{method} {path}" for method, host, path in external if not BROWSER_HOSTS.search(host)]
    check(not failed and not outside, f"{where}: no request leaves the machine, none fails",
          "; ".join((failed + outside)[:5]) or f"{len(local)} local request(s), {time.time() - start:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=QUICK_OUT,
                        help="quick build folder (default _build_quick)")
    parser.add_argument("--html", type=Path, help="HTML folder to check (default OUT/_build/html)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "chromedriver")
    args = parser.parse_args(argv)

    out = args.out if args.out.is_absolute() else REPO / args.out
    html_root = args.html or out / "_build" / "html"
    html_root = html_root if html_root.is_absolute() else REPO / html_root
    for tool, what in ((args.chromium, "chromium"), (args.chromedriver, "chromium-driver")):
        if not shutil.which(tool):
            print(f"{what} not found ({tool}): `make test-browser` installs Debian's {what}")
            return 1
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("selenium is not installed: `make test-browser` installs requirements.txt into .venv")
        return 1
    pages = sorted(str(p.relative_to(html_root)) for p in html_root.rglob("*.html")
                   if not p.relative_to(html_root).parts[0].startswith(("_static", "_sources"))
                   and "data-npgan-demo=" in p.read_text(encoding="utf-8", errors="replace"))
    if not pages:
        print(f"no page of {html_root} holds a generator widget (data-npgan-demo): build the book first")
        print("0 passed, 1 failed")
        return 1
    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    log = Log()
    server, proxy = book_server(html_root, log), tripwire_proxy(log)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    profile = tempfile.mkdtemp(prefix="check-demo-chromium-")
    check, ref, figures = Checks(), Reference(), {}
    driver = make_driver(args.chromium, args.chromedriver, proxy.server_address[1], profile)
    settle(driver, log)
    try:
        for page in pages:
            check_page(driver, check, ref, log, f"{base}/{page}", page, f"http {page}", figures, shots)
            check_page(driver, check, ref, log, (html_root / page).resolve().as_uri(), page,
                       f"file:// {page}", figures, shots)
    finally:
        driver.quit()
        server.shutdown()
        proxy.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    for name, values in figures.items():
        size = (html_root / "_static" / "npgan" / f"{name}.js").stat().st_size
        print(f"{name}: exported {size:,} bytes; " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()))
    shown = [shots / f"demo-{n}.png" for n in figures]
    print("screenshots: " + ", ".join(str(p.relative_to(REPO) if p.is_relative_to(REPO) else p)
                                      for p in shown))
    print(f"{check.passed} passed, {check.failed} failed")
    return 1 if check.failed or not check.passed else 0


if __name__ == "__main__":
    sys.exit(main())
