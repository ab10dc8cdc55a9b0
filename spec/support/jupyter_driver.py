"""Drives `moongrad --kernel` with Jupyter's own client (jupyter_client).

    python3 jupyter_driver.py KERNELS_DIR STEPS_JSON

KERNELS_DIR holds the moongrad kernelspec (moongrad --install-kernel
--prefix P writes P/share/jupyter/kernels/moongrad). STEPS_JSON is a list
of steps, run in order against one kernel:

    {"op": "execute", "code": "..."}            reply and iopub messages
    {"op": "execute_interrupted", "code": "...", "after": 1.0}
                                                 interrupts (SIGINT) after the delay
    {"op": "execute_queued", "codes": [...], "stop_on_error": true}
                                                 sends them all, then reads each reply
    {"op": "interrupt_idle"}                     SIGINT with nothing running
    {"op": "complete", "code": "...", "cursor": n}
    {"op": "is_complete", "code": "..."}
    {"op": "inspect", "code": "...", "cursor": n}
    {"op": "unsigned"}                           a shell message with a bad signature
    {"op": "garbage"}                            frames with no <IDS|MSG> delimiter
    {"op": "shutdown"}                           asks the kernel to stop

Prints one JSON object: {"results": [...], "alive": bool, "log": kernel stderr}.
Each result holds the reply's content and the iopub messages (type and
content) that answered the request, in order.
"""
import json
import os
import sys
import tempfile
import time

from jupyter_client.manager import KernelManager


def iopub_for(kc, msg_id, timeout=20):
    """The iopub messages answering msg_id, up to its idle status."""
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.time())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":
            if content["execution_state"] == "idle":
                return out
            continue
        out.append({"type": kind, "content": content})
    raise TimeoutError("no idle status for " + msg_id)


def shell_reply(kc, msg_id, timeout=20):
    deadline = time.time() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=deadline - time.time())
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]


def send_raw(km, frames):
    import zmq

    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.connect("%s://%s:%d" % (km.transport, km.ip, km.shell_port))
    s.send_multipart(frames)
    time.sleep(0.3)
    s.close()


def main():
    kernels_dir, steps = sys.argv[1], json.loads(sys.argv[2])
    os.environ["JUPYTER_PATH"] = kernels_dir
    log = tempfile.NamedTemporaryFile(prefix="moongrad_kernel_", suffix=".log", delete=False)
    km = KernelManager(kernel_name="moongrad")
    km.start_kernel(stderr=log)
    kc = km.client()
    kc.start_channels()
    results = []
    try:
        kc.wait_for_ready(timeout=30)
        for step in steps:
            op = step["op"]
            if op in ("execute", "execute_interrupted"):
                msg_id = kc.execute(step["code"])
                if op == "execute_interrupted":
                    time.sleep(step.get("after", 1.0))
                    km.interrupt_kernel()
                reply = shell_reply(kc, msg_id)
                results.append({"reply": reply, "iopub": iopub_for(kc, msg_id)})
            elif op == "execute_queued":
                ids = [kc.execute(code, stop_on_error=step.get("stop_on_error", True))
                       for code in step["codes"]]
                results.append({"replies": [shell_reply(kc, i) for i in ids]})
            elif op == "interrupt_idle":
                km.interrupt_kernel()
                time.sleep(0.3)
                results.append({})
            elif op == "complete":
                msg_id = kc.complete(step["code"], step.get("cursor"))
                results.append({"reply": shell_reply(kc, msg_id)})
            elif op == "is_complete":
                msg_id = kc.is_complete(step["code"])
                results.append({"reply": shell_reply(kc, msg_id)})
            elif op == "inspect":
                msg_id = kc.inspect(step["code"], step.get("cursor"))
                results.append({"reply": shell_reply(kc, msg_id)})
            elif op == "unsigned":
                msg = kc.session.msg("execute_request", {"code": "unsigned_ran = true"})
                parts = [json.dumps(msg[k], default=str).encode() for k in ("header", "parent_header", "metadata", "content")]
                send_raw(km, [b"<IDS|MSG>", b"0" * 64] + parts)
                results.append({})
            elif op == "garbage":
                send_raw(km, [b"not", b"a", b"message"])
                results.append({})
            elif op == "shutdown":
                kc.shutdown()
                deadline = time.time() + 10
                while km.is_alive() and time.time() < deadline:
                    time.sleep(0.1)
                results.append({"exited": not km.is_alive()})
        alive = km.is_alive()
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
        log.close()
    with open(log.name, encoding="utf-8", errors="replace") as f:
        text = f.read()
    os.unlink(log.name)
    print(json.dumps({"results": results, "alive": alive, "log": text}))


main()
