"""Turns a benchmark run into its report: ratios to the baseline, the
targets, a Markdown table, an SVG chart, and their copy in docs/performance.md.
Pure functions of the results, so they are tested without a load run."""

import json
from html import escape

CONNECTIONS = (1, 32)
BASELINE = "baseline GET /"
# The floors: the baseline worker doing only the minimum work of a kind of
# route. No route that must do that work can beat its floor.
D1_FLOOR = "baseline + one D1 read"
WRITE_FLOOR = "baseline + one D1 write"
SEND_FLOOR = "baseline + one D1 write + mail fetch"
REFERENCES = {BASELINE, D1_FLOOR, WRITE_FLOOR, SEND_FLOOR}
ARGON2_BOUND = {"POST /v1/login"}
# Each route's floor: what its own minimum work allows.
FLOOR_OF = {
    "GET /healthz": D1_FLOOR,
    "GET /v1/me": D1_FLOOR,
    "POST /v1/verify-email (wrong)": WRITE_FLOOR,
    "POST /v1/otp/verify (wrong)": WRITE_FLOOR,
    "POST /v1/otp/send": SEND_FLOOR,
    # One D1 read of the grant, and an RS256 verification in WebCrypto.
    "GET /oauth/userinfo": D1_FLOOR,
    # The client's read, then the redemption's batch (it finds no code).
    "POST /oauth/token (wrong code)": WRITE_FLOOR,
}
MIN_FLOOR_RATIO = 0.8
# The send-then-verify cycle: the service against a plain OTP script.
IN_FLIGHT = (1, 16)
MIN_CYCLE_RATIO = 0.7
# The RS256 signatures and verifications of a route's answer, whose
# cost in the worker is measured apart (WebCrypto's, which the native
# flow's time leaves out: its tests sign with a stand-in).
SIGNATURES = {"POST /oauth/token (authorization_code)": 2, "POST /oauth/token (refresh_token)": 2}
VERIFICATIONS = {"GET /oauth/userinfo": 1}
# The Workers Free plan's CPU time per request.
FREE_PLAN_CPU_MS = 10
# Room for the OpenID Provider (token signing, its endpoints).
MAX_GZIP_BYTES = 500_000
MAX_TAIL = 2.0
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def find(results, workload, connections):
    return next(w for w in results["workloads"] if w["workload"] == workload and w["connections"] == connections)


def finish(results):
    """Adds the ratios, the in-worker hash cost and the targets' verdicts."""
    for w in results["workloads"]:
        w["ratio"] = w["rps"] / find(results, BASELINE, w["connections"])["rps"]
        w["tail"] = w["p99_ms"] / w["p50_ms"] if w["p50_ms"] else 0.0
        if w["workload"] in FLOOR_OF:
            w["floor"] = FLOOR_OF[w["workload"]]
            w["floor_ratio"] = w["rps"] / find(results, w["floor"], w["connections"])["rps"]
    for c in results.get("cycles", []):
        reference = next(r for r in results["cycles"] if r["worker"] == "reference" and r["in_flight"] == c["in_flight"])
        c["ratio"] = c["cps"] / reference["cps"]
    # /v1/login is /v1/me plus one Argon2id verification (and a session
    # insert), so the difference of their medians at one connection is the
    # hash as the worker runs it.
    results["micro"]["argon2id_hash_worker_ms"] = (
        find(results, "POST /v1/login", 1)["p50_ms"] - find(results, "GET /v1/me", 1)["p50_ms"])

    # Each route's CPU in the worker, estimated: its flow's native time
    # scaled by what the worker takes over native for the same Argon2 hash.
    micro = results["micro"]
    factor = micro["argon2id_hash_worker_ms"] / micro["argon2id_hash_native_ms"]
    micro["wasm_over_native"] = factor
    # Two RS256 signatures: a successful redemption over a refused one.
    # One verification: userinfo over /v1/me (each one D1 read).
    if "token_ok_p50_ms" in micro:
        micro["rs256_sign_worker_ms"] = max(0.0, micro["token_ok_p50_ms"] - micro["token_refused_p50_ms"]) / 2
    micro["rs256_verify_worker_ms"] = max(0.0, find(results, "GET /oauth/userinfo", 1)["p50_ms"]
                                          - find(results, "GET /v1/me", 1)["p50_ms"])
    for c in results.get("cpu", []):
        jwt_ms = (SIGNATURES.get(c["route"], 0) * micro.get("rs256_sign_worker_ms", 0.0)
                  + VERIFICATIONS.get(c["route"], 0) * micro["rs256_verify_worker_ms"])
        c["jwt_ms"] = jwt_ms
        c["worker_ms"] = c["native_ms"] * factor + jwt_ms
        c["free_plan"] = c["worker_ms"] <= FREE_PLAN_CPU_MS

    targets = []
    for name, floor in FLOOR_OF.items():
        ratio = find(results, name, 32)["floor_ratio"]
        targets.append({"target": f"{name}: at least {MIN_FLOOR_RATIO:.0%} of its floor ({floor}) "
                                  "at 32 connections",
                        "value": f"{ratio:.0%}", "met": ratio >= MIN_FLOOR_RATIO})
    if results.get("cycles"):
        top = max(IN_FLIGHT)
        c = next(c for c in results["cycles"] if c["worker"] == "service" and c["in_flight"] == top)
        targets.append({"target": f"send-then-verify cycles: at least {MIN_CYCLE_RATIO:.0%} of the plain "
                                  f"OTP script's cycles/s at {top} in flight",
                        "value": f"{c['ratio']:.0%}", "met": c["ratio"] >= MIN_CYCLE_RATIO})
    gz = results["wasm"]["service"]["gzip"]
    targets.append({"target": f"gzipped wasm at most {MAX_GZIP_BYTES // 1000} KB",
                    "value": f"{gz / 1000:.1f} KB", "met": gz <= MAX_GZIP_BYTES})
    for w in results["workloads"]:
        if w["connections"] == 1 and w["workload"] not in REFERENCES | ARGON2_BOUND:
            targets.append({"target": f"{w['workload']}: p99 at most {MAX_TAIL:g}x p50 at 1 connection",
                            "value": f"{w['tail']:.2f}x", "met": w["tail"] <= MAX_TAIL})
    results["targets"] = targets
    return results


def markdown(results):
    m = results["machine"]
    rows = [
        f"Run {results['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"wrangler {m['wrangler']} (workerd {m['workerd']}), {m['load_tool']}, {m['rustc']}. "
        f"Each figure is one {results['seconds']} s run after a {results['warmup_seconds']} s warm-up, "
        "over loopback, with the load tool on the same machine.",
        "",
        "| Workload | 1 conn req/s | p50 ms | p99 ms | 32 conn req/s | p50 ms | p99 ms | vs baseline at 32 "
        "| vs own floor at 32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w1 in (w for w in results["workloads"] if w["connections"] == 1):
        w32 = find(results, w1["workload"], 32)
        name = w1["workload"] + (" (Argon2id)" if w1["workload"] in ARGON2_BOUND else "")
        floor = f"{w32['floor_ratio']:.0%}" if "floor_ratio" in w32 else "-"
        rows.append(f"| {name} | {w1['rps']:.0f} | {w1['p50_ms']:.2f} | {w1['p99_ms']:.2f} | "
                    f"{w32['rps']:.0f} | {w32['p50_ms']:.2f} | {w32['p99_ms']:.2f} | {w32['ratio']:.0%} | {floor} |")
    if results.get("cycles"):
        rows += ["", "Send-then-verify cycles (a send, the code read from the mail stand-in, the verify), "
                     "each in-flight cycle on its own kept-alive connection:", "",
                 "| Worker | In flight | Cycles/s | p50 ms per cycle | p99 ms | vs the plain OTP script |",
                 "|---|---:|---:|---:|---:|---:|"]
        for c in results["cycles"]:
            who = "otp-edge (`/v1/otp/*`)" if c["worker"] == "service" else "plain OTP script (reference)"
            rows.append(f"| {who} | {c['in_flight']} | {c['cps']:.1f} | {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | "
                        f"{c['ratio']:.0%} |")
    s, b, micro = results["wasm"]["service"], results["wasm"]["baseline"], results["micro"]
    before = f" ({s['before_wasm_opt']:,} B before wasm-opt)" if "before_wasm_opt" in s else ""
    rows += [
        "",
        f"- Wasm: {s['raw']:,} B raw{before}, {s['gzip']:,} B gzipped; the baseline's is "
        f"{b['raw']:,} B raw, {b['gzip']:,} B gzipped.",
        f"- One Argon2id hash (19 MiB, t=2, p=1): {micro['argon2id_hash_native_ms']:.1f} ms native (criterion), "
        f"{micro['argon2id_hash_worker_ms']:.1f} ms in the worker (p50 of /v1/login minus p50 of /v1/me).",
        f"- Code generation + HMAC digest + constant-time check: {micro['code_generate_digest_compare_us']:.2f} µs "
        "native (criterion).",
    ]
    if "rs256_sign_worker_ms" in micro:
        rows.append(
            f"- One RS256 signature in the worker (WebCrypto): at most {micro['rs256_sign_worker_ms']:.2f} ms "
            f"(half the p50 of {micro['samples']} successful code redemptions, {micro['token_ok_p50_ms']:.2f} ms, "
            f"minus that of as many refused ones, {micro['token_refused_p50_ms']:.2f} ms: an ID token and an access "
            "token, and the grant's writes).")
    rows.append(
        f"- One RS256 verification in the worker: at most {micro['rs256_verify_worker_ms']:.2f} ms (p50 of "
        "GET /oauth/userinfo minus p50 of GET /v1/me at one connection, each one D1 read).")
    if results.get("cpu"):
        rows += ["", f"CPU per request, estimated: the flow's native time (release, production Argon2 "
                     f"parameters) times {micro['wasm_over_native']:.2f}, the worker's time over native for one "
                     "Argon2id hash, plus the RS256 signatures and verifications measured in the worker (above). "
                     "The Workers Free plan allows 10 ms.", "",
                 "| Route | Argon2 runs | Native ms | RS256 ms | Est. worker CPU ms | Fits the Free plan |",
                 "|---|---:|---:|---:|---:|:---:|"]
        rows += [f"| `{c['route']}` | {c['argon2']} | {c['native_ms']:.3f} | {c['jwt_ms']:.2f} | {c['worker_ms']:.2f} | "
                 f"{'yes' if c['free_plan'] else 'no: paid plan'} |" for c in results["cpu"]]
    rows += [
        "",
        "| Target | Measured | Met |",
        "|---|---:|:---:|",
    ]
    rows += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in results["targets"]]
    return "\n".join(rows) + "\n"


def svg(results):
    """Horizontal bars: each workload's req/s as a share of the baseline's,
    at 1 and 32 connections; a route's target, 80% of its own floor at 32
    connections, is marked on its bar."""
    rows = [w["workload"] for w in results["workloads"] if w["connections"] == 1 and w["workload"] != BASELINE]
    left, width, bar, gap, top = 250, 440, 13, 14, 56
    top_ratio = max([1.0] + [w["ratio"] for w in results["workloads"] if w["workload"] != BASELINE])
    scale = width / top_ratio
    height = top + len(rows) * (2 * bar + gap) + 40
    colours = {1: "#8fb3d9", 32: "#1f5f99"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">Throughput as a share of the baseline worker '
           f'({escape(results["date"])})</text>',
           f'<text x="10" y="38" fill="#555">{escape(results["machine"]["cpu"])}, '
           f'{results["machine"]["cores"]} cores; wrk over loopback</text>']
    for i, name in enumerate(rows):
        y = top + i * (2 * bar + gap)
        out.append(f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{escape(name)}</text>')
        for j, connections in enumerate(CONNECTIONS):
            w = find(results, name, connections)
            yy = y + j * bar
            out.append(f'<rect x="{left}" y="{yy}" width="{max(w["ratio"] * scale, 1):.1f}" height="{bar - 2}" '
                       f'fill="{colours[connections]}"/>')
            out.append(f'<text x="{left + w["ratio"] * scale + 4:.1f}" y="{yy + bar - 3}" font-size="11">'
                       f'{w["ratio"]:.0%}</text>')
            if connections == 32 and "floor" in w:
                mark = left + MIN_FLOOR_RATIO * find(results, w["floor"], 32)["ratio"] * scale
                out.append(f'<line x1="{mark:.1f}" y1="{yy - 2}" x2="{mark:.1f}" y2="{yy + bar}" '
                           'stroke="#c0392b" stroke-width="2"/>')
    axis_y = top + len(rows) * (2 * bar + gap)
    for tick in (0.0, 0.5, 1.0):
        x = left + tick * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{axis_y}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{tick:.0%}</text>')
    ly = axis_y + 30
    for k, connections in enumerate(CONNECTIONS):
        x = left + k * 130
        out.append(f'<rect x="{x}" y="{ly - 10}" width="12" height="12" fill="{colours[connections]}"/>')
        out.append(f'<text x="{x + 16}" y="{ly}">{connections} connection{"s" if connections > 1 else ""}</text>')
    out.append(f'<text x="{left + 2 * 130}" y="{ly}" fill="#c0392b">| target: 80% of the route\'s floor</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"



def readme_block(results):
    return (f"{README_START}\n"
            "![Throughput as a share of the baseline](../bench/results/latest.svg)\n\n"
            f"{markdown(results)}{README_END}")


def write(results, directory, readme):
    (directory / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "latest.md").write_text(markdown(results))
    (directory / "latest.svg").write_text(svg(results))
    summary = {"date": results["date"], "cpu": results["machine"]["cpu"],
               "wasm_gzip": results["wasm"]["service"]["gzip"],
               "ratios_32": {w["workload"]: round(w["ratio"], 3) for w in results["workloads"]
                             if w["connections"] == 32},
               "floor_ratios_32": {w["workload"]: round(w["floor_ratio"], 3) for w in results["workloads"]
                                   if w["connections"] == 32 and "floor_ratio" in w},
               "cycles": {f"{c['worker']}@{c['in_flight']}": round(c["cps"], 1) for c in results.get("cycles", [])},
               "targets_met": sum(t["met"] for t in results["targets"]), "targets": len(results["targets"])}
    with open(directory / "history.jsonl", "a") as history:
        history.write(json.dumps(summary) + "\n")
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        tail = rest.split(README_END, 1)[1]
        readme.write_text(head + readme_block(results) + tail)
