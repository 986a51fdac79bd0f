# The naive client of issue 10: one request in flight, Python's json and
# base64 (both C), 1 MiB reads and 48 KiB writes. BenchmarkFileTransfer runs
# it beside guestdeck on the same socket as a lower bound.
#   python3 naive_transfer.py SOCKET read GUEST_PATH
#   python3 naive_transfer.py SOCKET write GUEST_PATH LOCAL_SOURCE
# Prints the bytes moved and the seconds taken, from the open to the close.
import base64, json, socket, sys, time

sock_path, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rb")

def call(cmd, args):
    s.sendall(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
    r = json.loads(f.readline())
    if "error" in r:
        sys.exit("%s: %s" % (cmd, r["error"]))
    return r["return"]

s.sendall(b"\xff" + json.dumps({"execute": "guest-sync-delimited", "arguments": {"id": 7}}).encode() + b"\n")
while json.loads(f.readline().lstrip(b"\xff") or b"{}").get("return") != 7:
    pass
t0 = time.time()
n = 0
if mode == "read":
    h = call("guest-file-open", {"path": path, "mode": "r"})
    while True:
        r = call("guest-file-read", {"handle": h, "count": 1 << 20})
        n += len(base64.b64decode(r["buf-b64"]))
        if r["eof"]:
            break
else:
    data = open(sys.argv[4], "rb").read()
    h = call("guest-file-open", {"path": path, "mode": "w"})
    while n < len(data):
        chunk = data[n:n + 48 * 1024]
        n += call("guest-file-write", {"handle": h, "buf-b64": base64.b64encode(chunk).decode(), "count": len(chunk)})["count"]
call("guest-file-close", {"handle": h})
print(n, time.time() - t0)
