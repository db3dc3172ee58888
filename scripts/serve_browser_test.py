#!/usr/bin/env python3
"""The browser and bad-input checks of scripts/serve-browser-test (run by it; see there).

usage: serve_browser_test.py BASE_URL SCREENSHOT.png
"""
import http.client
import json
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, SHOT = sys.argv[1], sys.argv[2]
HOST, PORT = BASE.split("//")[1].split(":")[0], int(BASE.rsplit(":", 1)[1])
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


# MARK: - The page in headless Chromium

def browser_checks():
    opts = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1150"]:
        opts.add_argument(a)
    opts.binary_location = "/usr/bin/chromium"
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        wait = WebDriverWait(d, 300, poll_frequency=0.2)
        d.get(BASE + "/")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")
        body = lambda: d.find_element(By.TAG_NAME, "body")
        el = d.find_element

        def run_and_wait(click=True):
            old = body().get_attribute("data-view") or ""
            d.execute_script("document.body.dataset.state = 'clicked'")
            if click:
                el(By.ID, "run").click()
            wait.until(lambda d: body().get_attribute("data-state") in ("done", "error")
                       and (body().get_attribute("data-view") or "") != old)
            check(body().get_attribute("data-state") == "done", "the ascent finished without an error: " + el(By.ID, "error").text)

        def snapshot():
            return {"after": el(By.ID, "top5-after").text, "before": el(By.ID, "top5-before").text,
                    "map": el(By.ID, "img-map").get_attribute("src"), "perturbed": el(By.ID, "img-after").get_attribute("src"),
                    "logits": el(By.ID, "logit-chart").text}

        # 1. An ImageNet architecture with synthetic weights at a small input size: the mechanics.
        Select(el(By.ID, "model")).select_by_value("resnet50/synthetic")
        wait.until(lambda d: el(By.ID, "size-row").is_displayed())
        el(By.ID, "size").clear(); el(By.ID, "size").send_keys("64", Keys.TAB)
        el(By.ID, "steps").send_keys(Keys.HOME); [el(By.ID, "steps").send_keys(Keys.RIGHT) for _ in range(2)]
        el(By.ID, "target-search").send_keys("tabby")
        wait.until(lambda d: Select(el(By.ID, "target")).first_selected_option.get_attribute("value") == "281")
        run_and_wait()
        check("model=resnet50" in d.current_url and "size=64" in d.current_url, "the URL holds the model and size: " + d.current_url)

        # 2. The MNIST CNN (trained on first use): digit 0 toward 3.
        Select(el(By.ID, "model")).select_by_value("mnist_cnn/trained")
        wait.until(lambda d: el(By.ID, "digit-row").is_displayed())
        el(By.ID, "target-search").clear(); el(By.ID, "target-search").send_keys("3")
        wait.until(lambda d: Select(el(By.ID, "target")).first_selected_option.get_attribute("value") == "3")
        run_and_wait()
        a = snapshot()
        check(a["before"].splitlines()[0].startswith("0 "), "top-5 before: the CNN calls test digit 0 a zero (" + a["before"].splitlines()[0] + ")")
        check(a["after"] != a["before"], "the ascent changed the top-5")
        check(a["perturbed"].startswith("data:image/png;base64,") and a["perturbed"] != el(By.ID, "img-input").get_attribute("src"),
              "the perturbed image differs from the input")

        # 3. Move the temperature with the keyboard: the page reruns by itself (the older request is cancelled).
        t_before = el(By.ID, "T-value").text
        for _ in range(80):
            el(By.ID, "T").send_keys(Keys.RIGHT)
        t_after = el(By.ID, "T-value").text
        # Each key press re-runs after a pause; results for the temperatures in between may show
        # first, so wait for the final one.
        wait.until(lambda d: "&T=" + t_after + "&" in (body().get_attribute("data-view") or "")
                   and body().get_attribute("data-state") == "done")
        b = snapshot()
        check(t_after != t_before, f"the temperature moved: {t_before} -> {t_after}")
        check("T=" + t_after in body().get_attribute("data-view"), "the shown result is for the new temperature")
        check(b["map"] != a["map"], "the map changed with the temperature")
        check(b["perturbed"] != a["perturbed"], "the perturbed image changed with the temperature")
        check(b["after"] != a["after"], "the top-5 after the ascent changed with the temperature")

        # 4. The teaching strips.
        el(By.ID, "strips").click()
        wait.until(lambda d: el(By.ID, "strip-steps").get_attribute("data-state") in ("done", "error"))
        nt = len(el(By.ID, "strip-temperature").find_elements(By.TAG_NAME, "img"))
        ns = len(el(By.ID, "strip-steps").find_elements(By.TAG_NAME, "img"))
        check(nt == 8 and ns == 3, f"strips: {nt} temperature cells (8), {ns} step cells (3)")

        # 5. The recipe link and the shared URL.
        href = el(By.ID, "recipe").get_attribute("href")
        yaml = urllib.request.urlopen(href).read().decode()
        check("step: ascend" in yaml and "targets: [3]" in yaml, "save as recipe gives the view's YAML")
        d.execute_script("window.scrollTo(0, 0)")
        d.save_screenshot(SHOT)
        print("  screenshot: " + SHOT)
        url = d.current_url
        d.get(url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")
        check(d.find_element(By.ID, "T-value").text == t_after and Select(d.find_element(By.ID, "target")).first_selected_option.get_attribute("value") == "3",
              "reloading the URL restores temperature and target")
    finally:
        d.quit()


# MARK: - Bad input against the running server

def request(method, path, body=None, headers=None, timeout=300):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def png_header(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def bad_input_checks():
    s, b = request("POST", "/api/upload", b"this is plain text, not a picture")
    check(s == 415, f"an upload that is not an image: {s} {b[:90]!r}")
    s, b = request("POST", "/api/upload", png_header(20000, 20000))
    check(s == 413 and b"20000x20000" in b, f"a 20000x20000 image: {s} {b[:90]!r}")

    # A body of 1 GB: refused from its Content-Length, before it is read.
    c = http.client.HTTPConnection(HOST, PORT, timeout=60)
    c.putrequest("POST", "/api/upload")
    c.putheader("Content-Length", str(1 << 30))
    c.endheaders()
    t0 = time.time()
    try:
        for _ in range(8):
            c.send(b"\0" * (1 << 20))
    except OSError:
        pass
    r = c.getresponse()
    check(r.status == 413, f"a 1 GB body: {r.status} after {time.time() - t0:.1f} s")
    c.close()

    for path, want in [("/api/explain?colour=red", 400), ("/api/explain?T=0", 400), ("/api/explain?steps=99", 400),
                       ("/api/explain?target=10", 400), ("/api/explain?alpha=inf", 400), ("/api/strip?kind=x", 400)]:
        s, b = request("GET", path)
        check(s == want and b"error" in b, f"{path}: {s} {json.loads(b).get('error', '')}")
    for path in ["/../Package.swift", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "//etc/passwd",
                 "/api/../../README.md", "/static/../../../../etc/passwd", "/Sources/Serve/Server.swift"]:
        s, b = request("GET", path)
        check(s == 404 and b"root:" not in b and b"PackageDescription" not in b, f"traversal {path}: {s}")

    # 50 concurrent computations: each answered (200) or refused with 503, then the server still answers.
    statuses = []
    lock = threading.Lock()

    def one(i):
        try:
            s, _ = request("GET", f"/api/explain?image=digit:{i}&target={i % 10}&steps=3")
        except Exception as e:  # a dropped connection is a failure too
            s = repr(e)
        with lock:
            statuses.append(s)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    counts = {s: statuses.count(s) for s in set(statuses)}
    check(len(statuses) == 50 and set(statuses) <= {200, 503} and counts.get(503, 0) > 0,
          f"50 concurrent requests: {counts}")
    s, _ = request("GET", "/api/models")
    check(s == 200, "the server still answers after all that")


print("serve-browser-test: the page in headless Chromium")
browser_checks()
print("serve-browser-test: bad input")
bad_input_checks()
if failures:
    print(f"serve-browser-test: {len(failures)} check(s) failed")
    sys.exit(1)
