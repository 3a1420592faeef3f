#!/usr/bin/env python3
"""Open a page in headless Chromium over the DevTools protocol and say what happened.

    check.py CHROMIUM FILE SCREENSHOT.png

Prints one JSON document: console errors and uncaught exceptions, every network request the
page made (anything but the file itself), the rendered text, how many drawn SVG shapes the page
holds, and the screenshot's path. Used by the report test (tests/cli/report.rs); needs the
`websocket-client` package (scripts/test installs it into .venv).
"""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket

chromium, page, shot = sys.argv[1:4]
profile = tempfile.mkdtemp(prefix="flow-chromium-")
proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
     "--disable-background-networking", "--disable-component-update", "--disable-sync",
     "--disable-default-apps", f"--user-data-dir={profile}", "--remote-debugging-port=0",
     "--window-size=1100,1600", "about:blank"],
    stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
try:
    port = None
    deadline = time.time() + 30
    while port is None and time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = m.group(1)
    if port is None:
        sys.exit("chromium did not start its DevTools endpoint")
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    ws = websocket.create_connection(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"], timeout=30)
    events, next_id = [], [0]

    def call(method, params=None):
        next_id[0] += 1
        ws.send(json.dumps({"id": next_id[0], "method": method, "params": params or {}}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == next_id[0]:
                return msg.get("result", {})
            events.append(msg)

    for domain in ["Runtime", "Log", "Network", "Page"]:
        call(f"{domain}.enable")
    target = "file://" + os.path.abspath(page)
    call("Page.navigate", {"url": target})
    deadline = time.time() + 30
    while not any(e.get("method") == "Page.loadEventFired" for e in events) and time.time() < deadline:
        events.append(json.loads(ws.recv()))
    time.sleep(0.5)
    result = call("Runtime.evaluate", {"expression": """JSON.stringify({
        text: document.body.innerText,
        title: document.title,
        shapes: document.querySelectorAll('svg polyline[points], svg path[d], svg polygon[points], svg rect').length,
        lines: document.querySelectorAll('svg polyline[points]').length,
        charts: document.querySelectorAll('.chart svg').length,
        architectures: document.querySelectorAll('.architecture svg').length,
        resources: document.querySelectorAll('.architecture svg g.resource').length,
        scripts: document.querySelectorAll('script').length,
    })""", "returnByValue": True})
    dom = json.loads(result["result"]["value"])
    png = call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    with open(shot, "wb") as f:
        f.write(base64.b64decode(png["data"]))
    # Drain what is left.
    ws.settimeout(0.5)
    try:
        while True:
            events.append(json.loads(ws.recv()))
    except Exception:
        pass
    errors = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") == "error":
            errors.append(" ".join(str(a.get("value")) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            errors.append(p.get("exceptionDetails", {}).get("text", "exception"))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(p["entry"].get("text", ""))
    requests = [e["params"]["request"]["url"] for e in events
                if e.get("method") == "Network.requestWillBeSent" and e["params"]["request"]["url"] != target]
    print(json.dumps({"errors": errors, "requests": requests, "dom": dom, "screenshot": shot}))
finally:
    proc.kill()
    proc.wait()
