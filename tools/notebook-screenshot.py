#!/usr/bin/python3
"""Runs the example notebook in a real browser and takes its picture.

    tools/notebook-screenshot.py MOONGRAD IN.ipynb OUT.png

Starts Debian's Jupyter Notebook server (jupyter-notebook) on a free port
with the moongrad kernelspec in a temporary prefix, opens the notebook in
headless Chromium, runs every cell from the page (Cell > Run All, through
the DevTools protocol: python3-websocket), waits until none is running and
writes a screenshot of the whole notebook. Nothing here is a dependency of
moongrad: it is how docs/notebook.png was made.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return urllib.request.urlopen(url, timeout=2).read()
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=120)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def eval(self, js):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True)
        return r["result"].get("value")

    def until(self, js, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(js):
                return
            time.sleep(0.5)
        raise TimeoutError(what)


def main():
    exe, src, dst = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="moongrad_shot_")
    procs = []
    try:
        subprocess.run([exe, "--install-kernel", "--prefix", work], check=True, stdout=subprocess.DEVNULL)
        env = dict(os.environ, JUPYTER_PATH=os.path.join(work, "share", "jupyter"),
                   JUPYTER_CONFIG_DIR=os.path.join(work, "config"), HOME=work)
        nb = json.load(open(src))
        for c in nb["cells"]:  # run from a clean page, as a user would
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        name = os.path.basename(src)
        json.dump(nb, open(os.path.join(work, name), "w"))
        port, debug = free_port(), free_port()
        procs.append(subprocess.Popen(
            ["jupyter-notebook", "--no-browser", "--allow-root", "--port=%d" % port, "--ip=127.0.0.1",
             "--NotebookApp.token=", "--NotebookApp.password=", "--notebook-dir=" + work],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w")))
        wait_http("http://127.0.0.1:%d/api" % port)
        procs.append(subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-port=%d" % debug, "--user-data-dir=" + os.path.join(work, "chrome"),
             "--window-size=1100,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http("http://127.0.0.1:%d/json/version" % debug)
        tabs = json.loads(wait_http("http://127.0.0.1:%d/json/list" % debug))
        page = Page([t for t in tabs if t["type"] == "page"][0]["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Page.navigate", url="http://127.0.0.1:%d/notebooks/%s" % (port, name))
        page.until("typeof Jupyter !== 'undefined' && Jupyter.notebook && Jupyter.notebook.kernel"
                   " && Jupyter.notebook.kernel.is_connected()", 60, "the kernel to connect")
        page.eval("Jupyter.notebook.execute_all_cells()")
        page.until("Jupyter.notebook.get_cells().every(c => c.cell_type !== 'code' ||"
                   " (c.input_prompt_number !== '*' && c.input_prompt_number !== undefined &&"
                   "  c.input_prompt_number !== null))"
                   " && Jupyter.notebook.kernel_busy === false", 300, "every cell to run")
        time.sleep(1.5)  # the last outputs' rendering (SVG, PNG)
        # The notebook scrolls inside #site; let the page grow to its height.
        height = page.eval("document.getElementById('site').style.height = 'auto';"
                           "document.body.style.overflow = 'visible';"
                           "document.body.scrollHeight")
        page.call("Emulation.setDeviceMetricsOverride", width=1100, height=int(height),
                  deviceScaleFactor=1, mobile=False)
        time.sleep(0.5)
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(dst, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("%s: 1100 x %d" % (dst, height))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


main()
