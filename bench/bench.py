"""The benchmark that `bench/run` drives: the release worker and a baseline
worker under `wrangler dev`, loaded by wrk over loopback, with the report
written to bench/results/ and docs/performance.md.

Machines differ and are noisy, so every throughput is also given as a
ratio of the baseline's, measured in the same run on the same machine.
"""

import concurrent.futures
import datetime
import itertools
import threading
import time
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import ADMIN_TOKEN, StandIn, Worker, oidc_signing_keys  # noqa: E402

import report  # noqa: E402
import requests  # noqa: E402

# The baseline worker's tables (bench/baseline/src/lib.rs).
BASELINE_SCHEMA = ("CREATE TABLE floor_writes (k INTEGER PRIMARY KEY, v INTEGER);"
                   "CREATE TABLE ref_codes (address TEXT PRIMARY KEY, code TEXT NOT NULL, expires_at INTEGER NOT NULL);")

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "3"))
# Each verify pool member takes at most MAX_ATTEMPTS - 1 wrong guesses, so
# the pools hold POOL * 99 guesses; a run that needs more fails loudly.
POOL = int(os.environ.get("BENCH_POOL", "300"))
MAX_ATTEMPTS = 100
PASSWORD = "bench-password-correct-horse"
# Accounts the login workload signs in to, so that at 32 connections no
# account has more than a few sign-ins in flight.
LOGIN_ACCOUNTS = 64
# Sequential code redemptions timed for the signing cost.
JWT_SAMPLES = int(os.environ.get("BENCH_JWT_SAMPLES", "200"))
RESULTS = ROOT / "bench" / "results"

# Production settings, except that every request comes from 127.0.0.1: the
# per-client caps of the Rate Limiting bindings are raised out of the way
# (they still count every request), and codes allow 100 guesses so that a
# small pool of pending users covers a whole run.
SERVICE_VARS = {
    "OTP_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "API_KEY_SENDS_PER_HOUR": "10000000",
}
SERVICE_LIMITS = {"IP_LIMITER": (1_000_000_000, 60), "API_LIMITER": (1_000_000_000, 60)}


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def log(msg):
    print(msg, flush=True)


def wrong(code):
    """A code of the same shape that is certainly not `code`."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def parallel(fn, items, workers=16):
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def expect(r, status):
    if r.status_code != status:
        raise RuntimeError(f"setup: {r.request.method} {r.request.url} gave {r.status_code}: {r.text}")
    return r


class Fixtures:
    """The accounts, tokens and pending codes the workloads need, made
    through the public API like any client would."""

    def __init__(self, service, mail, workdir):
        self.service, self.mail, self.dir = service, mail, workdir

    def bodies(self, name, lines):
        path = self.dir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
        return str(path)

    def verify_email_pool(self):
        emails = [f"pending-{i}@bench.test" for i in range(POOL)]
        parallel(lambda e: expect(self.service.register(e, PASSWORD), 202), emails)
        return self.bodies("verify-email", [{"email": e, "code": wrong(self.mail.code(e))} for e in emails])

    def login(self):
        """Bodies for /v1/login over LOGIN_ACCOUNTS accounts, and a session
        of the first. A sign-in is counted against its address before the
        password is compared (the lockout's budget), so many at once for
        one account would lock it: an app's users sign in one at a time
        each, and so do these, with the connections spread over them."""
        emails = ["login@bench.test"] + [f"login-{i}@bench.test" for i in range(1, LOGIN_ACCOUNTS)]
        parallel(lambda e: expect(self.service.register(e, PASSWORD), 202), emails)
        parallel(lambda e: expect(self.service.verify_email(e, self.mail.code(e)), 200), emails)
        bodies = [{"email": e, "password": PASSWORD} for e in emails]
        token = expect(self.service.call("login", bodies[0]), 200).json()["token"]
        return self.bodies("login", bodies), token

    def api_key(self):
        r = self.service.admin_create_key("bench", ["email"], headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        return expect(r, 201).json()["key"]

    def otp_send(self):
        # load.lua makes every "%d" unique: each send goes to a new address,
        # out of reach of the per-address caps.
        return self.bodies("otp-send", [{"channel": "email", "to": "send-%d@bench.test", "purpose": "login"}])

    def oidc_client(self):
        r = self.service.call("admin_create_oidc_client", {"name": "bench", "type": "confidential",
                                                           "redirect_uris": ["https://app.bench.test/cb"]},
                              headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        return expect(r, 201).json()

    def browser(self):
        """A browser signed in on the pages as the login account: a call
        carrying its cookies. Cookies go by hand: `requests` keeps `Secure`
        ones off plain http."""
        jar = {}

        def call(method, path, **kw):
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            r = requests.request(method, self.service.url + path, allow_redirects=False,
                                 headers={"cookie": cookie, "origin": self.service.url}, **kw)
            for c in r.raw.headers.getlist("set-cookie"):
                name, value = c.split(";", 1)[0].split("=", 1)
                jar[name] = value
            return r

        page = expect(call("GET", "/auth/sign-in"), 200).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        form = {"csrf": csrf, "email": "login@bench.test", "password": PASSWORD, "via": "password"}
        expect(call("POST", "/auth/sign-in", data=form), 303)
        return call

    def code(self, browser, client):
        r = browser("GET", "/oauth/authorize", params={
            "client_id": client["client_id"], "redirect_uri": client["redirect_uris"][0],
            "response_type": "code", "scope": "openid email"})
        return re.search(r"code=([^&]+)", expect(r, 303).headers["location"]).group(1)

    def redeem(self, client, code):
        return requests.post(self.service.url + "/oauth/token", auth=(client["client_id"], client["client_secret"]),
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": client["redirect_uris"][0]})

    def access_token(self, client):
        """An access token for the login account, made as a browser and an
        app make it: the pages' sign-in, /oauth/authorize, /oauth/token."""
        code = self.code(self.browser(), client)
        return expect(self.redeem(client, code), 200).json()["access_token"]

    def token_signing(self, client, n=JWT_SAMPLES):
        """The worker's cost of a token answer's two RS256 signatures (an ID
        token, an access token): the p50 of `n` successful code redemptions
        minus the p50 of `n` refused ones (an unknown code), one at a time.
        Both are one D1 batch; the success also writes the grant, so the
        difference is an upper bound."""
        browser = self.browser()
        ok, refused = [], []
        for i in range(n):
            code = self.code(browser, client)
            started = time.perf_counter()
            expect(self.redeem(client, code), 200)
            ok.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            expect(self.redeem(client, f"unknown-{i}"), 400)
            refused.append((time.perf_counter() - started) * 1000)
        return {"token_ok_p50_ms": median(ok), "token_refused_p50_ms": median(refused), "samples": n}

    def token_wrong_code(self, client):
        # load.lua makes every "%d" unique: each request names an unknown code.
        line = (f"grant_type=authorization_code&code=unknown-%d&redirect_uri=https%3A%2F%2Fapp.bench.test%2Fcb"
                f"&client_id={client['client_id']}&client_secret={client['client_secret']}")
        path = self.dir / "token.txt"
        path.write_text(line + "\n")
        return str(path)

    def otp_verify_pool(self, key):
        auth = {"authorization": f"Bearer {key}"}
        to = [f"otp-{i}@bench.test" for i in range(POOL)]
        parallel(lambda a: expect(self.service.otp_send("email", a, "login", headers=auth), 202), to)
        return self.bodies("otp-verify", [{"channel": "email", "to": a, "purpose": "login",
                                           "code": wrong(self.mail.code(a))} for a in to])


RUNS = iter(range(1, 1 << 30))


def wrk(url, connections, seconds, method, path, status, bodies="", token="", content_type=""):
    threads = min(connections, os.cpu_count() or 1)
    # A token may be made fresh for each run (an access token lives ten minutes).
    token = token() if callable(token) else token
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
           "-s", str(ROOT / "bench" / "load.lua"), url + path, "--", method, path, str(status), bodies, token,
           str(next(RUNS)), content_type]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    return json.loads(line[len("BENCH "):])


def measure(workload, url, connections, **request):
    """A warm-up, then the measured run; any answer but the expected
    status, or any socket error, voids the measurement."""
    wrk(url, connections, WARMUP, **request)
    raw = wrk(url, connections, SECONDS, **request)
    failures = raw["unexpected"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    if failures:
        raise RuntimeError(f"{workload} at {connections} connections: {failures} failed answers: {raw}")
    result = {
        "workload": workload,
        "connections": connections,
        "requests": raw["requests"],
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
    }
    log(f"  {workload:<28} c={connections:<3} {result['rps']:8.1f} req/s  "
        f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms")
    return result


ADDRESSES = itertools.count()


def cycles(name, send, verify, mail, in_flight):
    """Send-then-verify cycles: each of `in_flight` threads, on its own
    kept-alive connection, sends a code to a new address, reads it from the
    mail stand-in and verifies it, again and again, for a warm-up and then
    SECONDS. Any unexpected answer voids the run."""
    stop, counting = threading.Event(), threading.Event()
    durations, failures = [], []
    run_id = next(RUNS)

    def loop():
        session = requests.Session()
        while not stop.is_set():
            address = f"cycle-{run_id}-{next(ADDRESSES)}@bench.test"
            started = time.perf_counter()
            try:
                send(session, address)
                verify(session, address, mail.code(address, timeout=10))
            except Exception as e:  # noqa: BLE001 - reported below, the run is void
                failures.append(repr(e))
                return
            if counting.is_set():
                durations.append(time.perf_counter() - started)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(in_flight)]
    for t in threads:
        t.start()
    time.sleep(WARMUP)
    counting.set()
    began = time.perf_counter()
    time.sleep(SECONDS)
    counting.clear()
    elapsed = time.perf_counter() - began
    stop.set()
    for t in threads:
        t.join(30)
    if failures:
        raise RuntimeError(f"{name} cycles at {in_flight} in flight: {failures[:3]}")
    durations.sort()
    pick = lambda q: 1000 * durations[min(len(durations) - 1, int(q * len(durations)))]  # noqa: E731
    result = {"worker": name, "in_flight": in_flight, "cycles": len(durations), "cps": len(durations) / elapsed,
              "p50_ms": pick(0.5), "p99_ms": pick(0.99)}
    log(f"  {name:<10} cycles, {in_flight:>2} in flight {result['cps']:8.1f} cycles/s  "
        f"p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms")
    return result


def expect_status(r, status):
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url} gave {r.status_code}: {r.text[:200]}")


def criterion_median_ms(name):
    path = ROOT / "target" / "criterion" / name / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e6


def wasm_sizes(build_dir, build_log):
    wasm = (build_dir / "index_bg.wasm").read_bytes()
    sizes = {"raw": len(wasm), "gzip": len(gzip.compress(wasm, 9))}
    m = re.search(r"wasm-opt -Oz: (\d+) -> (\d+) bytes", Path(build_log).read_text()) if build_log else None
    if m:
        sizes["before_wasm_opt"] = int(m.group(1))
    return sizes


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
    package = lambda name: json.loads((ROOT / "node_modules" / name / "package.json").read_text())["version"]  # noqa: E731
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2 ** 20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "rustc": first(["rustc", "--version"]),
        "wrangler": package("wrangler"),
        "workerd": package("workerd"),
        "load_tool": first(["wrk", "--version"]).split(" [")[0],
    }


def cpu_per_route(cpu_log):
    """The native ms of each route's flow (src/service/rounds.rs, `cpu_per_route`)."""
    if not cpu_log:
        return []
    return [json.loads(line[len("CPU "):]) for line in Path(cpu_log).read_text().splitlines()
            if line.startswith("CPU ")]


def run(build_log=None, baseline_log=None, cpu_log=None):
    RESULTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="otp-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {"date": started.strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
               "seconds": SECONDS, "warmup_seconds": WARMUP, "workloads": []}

    results["micro"] = {
        "argon2id_hash_native_ms": criterion_median_ms("argon2id/hash_owasp"),
        "code_generate_digest_compare_us": criterion_median_ms("code_generate_digest_compare") * 1000,
    }
    results["cpu"] = cpu_per_route(cpu_log)
    results["wasm"] = {"service": wasm_sizes(ROOT / "build", build_log),
                       "baseline": wasm_sizes(ROOT / "bench" / "baseline" / "build", baseline_log)}

    # The mail API answers at once over kept-alive connections, so a send
    # measures this service rather than the stand-in.
    mail = StandIn(keep_alive=True)
    baseline = Worker("bench-baseline", main=ROOT / "bench" / "baseline" / "build" / "worker" / "shim.mjs",
                      mail=mail, kv=False, schema=BASELINE_SCHEMA)
    # The OpenID Provider's issuer is the worker's own address.
    service = Worker("bench-service", mail=mail, vars=SERVICE_VARS, limits=SERVICE_LIMITS,
                     secrets={"OIDC_SIGNING_KEYS": oidc_signing_keys()}, start=False)
    service.vars["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{service.port}"
    service.start()
    if service.vars["PUBLIC_BASE_URL"] != service.url:
        service.stop()
        service.vars["PUBLIC_BASE_URL"] = service.url
        service.start()
    try:
        log("== fixtures (through the API)")
        fx = Fixtures(service, mail, workdir)
        verify_email = fx.verify_email_pool()
        login, token = fx.login()
        key = fx.api_key()
        otp_verify = fx.otp_verify_pool(key)
        client = fx.oidc_client()
        log(f"  {POOL} pending users, {POOL} pending app codes, one account")

        workloads = [
            ("baseline GET /", baseline.url, dict(method="GET", path="/", status=200)),
            (report.D1_FLOOR, baseline.url, dict(method="GET", path="/d1", status=200)),
            (report.WRITE_FLOOR, baseline.url, dict(method="POST", path="/d1-write", status=200)),
            (report.SEND_FLOOR, baseline.url, dict(method="POST", path="/send", status=200)),
            ("GET /healthz", service.url, dict(method="GET", path="/healthz", status=200)),
            ("POST /v1/verify-email (wrong)", service.url,
             dict(method="POST", path="/v1/verify-email", status=400, bodies=verify_email)),
            ("POST /v1/login", service.url, dict(method="POST", path="/v1/login", status=200, bodies=login)),
            ("GET /v1/me", service.url, dict(method="GET", path="/v1/me", status=200, token=token)),
            ("POST /v1/otp/send", service.url,
             dict(method="POST", path="/v1/otp/send", status=202, bodies=fx.otp_send(), token=key)),
            ("POST /v1/otp/verify (wrong)", service.url,
             dict(method="POST", path="/v1/otp/verify", status=400, bodies=otp_verify, token=key)),
            ("GET /oauth/userinfo", service.url,
             dict(method="GET", path="/oauth/userinfo", status=200, token=lambda: fx.access_token(client))),
            ("POST /oauth/token (wrong code)", service.url,
             dict(method="POST", path="/oauth/token", status=400, bodies=fx.token_wrong_code(client),
                  content_type="application/x-www-form-urlencoded")),
        ]
        log(f"== token signing in the worker: {JWT_SAMPLES} redemptions, one at a time")
        results["micro"].update(fx.token_signing(client))
        log(f"== load: wrk, {WARMUP} s warm-up + {SECONDS} s per run")
        for connections in report.CONNECTIONS:
            for name, url, request in workloads:
                results["workloads"].append(measure(name, url, connections, **request))

        log(f"== send-then-verify cycles, {WARMUP} s warm-up + {SECONDS} s per run")
        auth = {"authorization": f"Bearer {key}"}
        service_send = lambda s, to: expect_status(s.post(  # noqa: E731
            service.url + "/v1/otp/send", json={"channel": "email", "to": to, "purpose": "login"}, headers=auth), 202)
        service_verify = lambda s, to, code: expect_status(s.post(  # noqa: E731
            service.url + "/v1/otp/verify", json={"channel": "email", "to": to, "purpose": "login", "code": code},
            headers=auth), 200)
        reference_send = lambda s, to: expect_status(  # noqa: E731
            s.post(baseline.url + "/ref/send", params={"to": to}), 200)
        reference_verify = lambda s, to, code: expect_status(  # noqa: E731
            s.post(baseline.url + "/ref/verify", params={"to": to, "code": code}), 200)
        results["cycles"] = []
        for in_flight in report.IN_FLIGHT:
            results["cycles"].append(cycles("reference", reference_send, reference_verify, mail, in_flight))
            results["cycles"].append(cycles("service", service_send, service_verify, mail, in_flight))
    finally:
        service.stop()
        baseline.stop()
        mail.close()

    report.finish(results)
    report.write(results, RESULTS, ROOT / "docs" / "performance.md")
    log("")
    log(report.markdown(results))
    log(f"Written: {RESULTS.relative_to(ROOT)}/latest.json, latest.md, latest.svg; docs/performance.md updated.")
    return results


if __name__ == "__main__":
    run(*sys.argv[1:4])
