#!/usr/bin/env python3
# HTTP starvation at full size (issue 15), by hand, not part of the tests:
# starts `pra-registry serve` on a temp folder, churns 1,500 idle
# connections from 127.0.0.3 (each held until the server closes it or 5 s,
# then reopened), and meanwhile times health probes from 127.0.0.2 (curl)
# and `pra key submit` runs from 127.0.0.1. Needs python3 and curl; raise
# the open-file limit first.
#
#   ulimit -n 20000
#   cargo build --release -p pra-registry -p pra-client
#   python3 scripts/http-starvation.py target/release/pra-registry target/release/pra 30
#   FLOOD=0 python3 scripts/http-starvation.py …   # the same without the flood
import asyncio, os, subprocess, sys, time, tempfile, shutil

REG, PRA = sys.argv[1], sys.argv[2]
SECS = float(sys.argv[3]) if len(sys.argv) > 3 else 30
tmp = tempfile.mkdtemp()
data = os.path.join(tmp, "data")
subprocess.run([REG, "--data", data, "user", "add", "alice"], check=True, capture_output=True)
srv = subprocess.Popen([REG, "--data", data, "serve", "--api", "127.0.0.1:0", "--ssh", "127.0.0.1:0"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
port = None
while port is None:
    line = srv.stdout.readline()
    if line.startswith("api listening on "):
        port = int(line.rsplit(":", 1)[1])

stats = {"connects": 0, "closed_by_server": 0}
stop = False

async def slot():
    while not stop:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))
        except OSError:
            await asyncio.sleep(0.05); continue
        stats["connects"] += 1
        try:
            got = await asyncio.wait_for(r.read(1), 5)
            if got == b"":
                stats["closed_by_server"] += 1
        except (asyncio.TimeoutError, OSError):
            pass
        w.close()
        await asyncio.sleep(0.05)

async def probe():
    # curl in its own process, so the flood's event loop does not delay it
    p = await asyncio.create_subprocess_exec("curl", "-s", "-o", "/dev/null", "--interface", "127.0.0.2",
        "-m", "30", "-w", "%{http_code} %{time_total}", f"http://127.0.0.1:{port}/api/v1/health",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    code, secs = out.decode().split()
    return code == "200", float(secs)

async def submit(n):
    home = os.path.join(tmp, f"home{n}")
    env = dict(os.environ, PRA_PASSPHRASE="correct-horse-battery")
    # one account per run: an account may have only 5 pending keys
    subprocess.run([REG, "--data", data, "user", "add", f"emp{n}"], check=True, capture_output=True)
    subprocess.run([PRA, "--home", home, "keygen", "--user", f"emp{n}"], env=env, check=True, capture_output=True)
    t = time.monotonic()
    p = await asyncio.create_subprocess_exec(PRA, "--home", home, "key", "submit", "--registry",
                                             f"http://127.0.0.1:{port}", env=env,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await p.communicate()
    return p.returncode == 0, time.monotonic() - t

async def main():
    global stop
    flood = [asyncio.create_task(slot()) for _ in range(int(os.environ.get("FLOOD", "1500")))]
    await asyncio.sleep(3)
    probes, submits = [], []
    end = time.monotonic() + SECS
    n = 0
    while time.monotonic() < end:
        probes.append(await probe())
        if n % 6 == 0:  # within the 10 submissions a minute per source
            submits.append(await submit(n))
        n += 1
        await asyncio.sleep(0.5)
    stop = True
    for f in flood:
        f.cancel()
    lat = sorted(d for _, d in probes)
    print(f"flood: {stats['connects']} connections in {SECS + 3:.0f} s from 127.0.0.3, "
          f"{stats['closed_by_server']} closed at once by the server")
    print(f"health from 127.0.0.2: {sum(ok for ok, _ in probes)}/{len(probes)} ok, "
          f"median {lat[len(lat)//2]*1000:.1f} ms, max {lat[-1]*1000:.1f} ms")
    sl = sorted(d for _, d in submits)
    print(f"pra key submit from 127.0.0.1: {sum(ok for ok, _ in submits)}/{len(submits)} ok, "
          f"median {sl[len(sl)//2]*1000:.0f} ms, max {sl[-1]*1000:.0f} ms")

try:
    asyncio.run(main())
finally:
    srv.terminate(); srv.wait()
    shutil.rmtree(tmp, ignore_errors=True)
