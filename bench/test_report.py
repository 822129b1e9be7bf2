"""The benchmark's report, from made-up results: ratios, verdicts, the
table, the chart and the README block. No load is run here."""

import json
import xml.etree.ElementTree as ET

import pytest

import report

MACHINE = {"cpu": "Test CPU", "cores": 2, "memory_gib": 24.0, "os": "Linux", "rustc": "rustc 1",
           "wrangler": "4", "workerd": "1", "load_tool": "wrk 4"}


def run(**overrides):
    """Baseline at 1000/2000 req/s; every other workload at the given share."""
    share = {"GET /healthz": 0.3, "GET /v1/me": 0.6, "POST /v1/verify-email (wrong)": 0.5,
             "POST /v1/otp/verify (wrong)": 0.4, "POST /v1/otp/send": 0.1, "POST /v1/login": 0.01,
             "GET /oauth/userinfo": 0.6, "POST /oauth/token (wrong code)": 0.45,
             report.D1_FLOOR: 0.7, report.WRITE_FLOOR: 0.5, report.SEND_FLOOR: 0.2, **overrides}
    workloads = []
    for connections, base in ((1, 1000.0), (32, 2000.0)):
        for name, ratio in [(report.BASELINE, 1.0), *share.items()]:
            p50 = 40.0 if name == "POST /v1/login" else 2.0
            # The tail at one connection is 1.5x, except for /me: 3x.
            p99 = p50 * (3.0 if name == "GET /v1/me" and connections == 1 else 1.5)
            workloads.append({"workload": name, "connections": connections, "requests": int(base * ratio * 10),
                              "rps": base * ratio, "p50_ms": p50, "p90_ms": p50, "p99_ms": p99, "max_ms": p99})
    return report.finish({
        "date": "2026-11-24 12:00 UTC", "machine": MACHINE, "seconds": 10, "warmup_seconds": 3,
        "workloads": workloads,
        "wasm": {"service": {"raw": 600_000, "gzip": 240_000, "before_wasm_opt": 670_000},
                 "baseline": {"raw": 100_000, "gzip": 40_000}},
        "micro": {"argon2id_hash_native_ms": 29.0, "code_generate_digest_compare_us": 1.7,
                  "token_ok_p50_ms": 9.0, "token_refused_p50_ms": 6.0, "samples": 200},
        "cpu": [{"route": "POST /v1/login", "native_ms": 29.5, "argon2": 1},
                {"route": "GET /v1/me", "native_ms": 0.05, "argon2": 0},
                {"route": "POST /oauth/token (authorization_code)", "native_ms": 0.02, "argon2": 0}],
        "cycles": [{"worker": worker, "in_flight": n, "cycles": int(cps * 10), "cps": cps, "p50_ms": 1000 * n / cps,
                    "p99_ms": 2000 * n / cps}
                   for worker, per in (("service", {1: 20.0, 16: 60.0}), ("reference", {1: 40.0, 16: 100.0}))
                   for n, cps in per.items()],
    })


def verdicts(results):
    return {t["target"]: t["met"] for t in results["targets"]}


def test_ratios_are_to_the_baseline_at_the_same_connection_count():
    results = run()
    me = report.find(results, "GET /v1/me", 32)
    assert me["ratio"] == pytest.approx(0.6)
    assert report.find(results, report.BASELINE, 1)["ratio"] == 1.0


def test_the_hash_in_the_worker_is_login_minus_me_at_one_connection():
    assert run()["micro"]["argon2id_hash_worker_ms"] == pytest.approx(38.0)


def floor_target(name, floor):
    return f"{name}: at least 80% of its floor ({floor}) at 32 connections"


def test_each_route_is_judged_against_its_own_floor():
    results = run()
    v = verdicts(results)
    # /me at 0.6 of the baseline, its floor (one D1 read) at 0.7: 86%.
    assert report.find(results, "GET /v1/me", 32)["floor_ratio"] == pytest.approx(0.6 / 0.7)
    assert v[floor_target("GET /v1/me", report.D1_FLOOR)] is True
    assert v[floor_target("GET /healthz", report.D1_FLOOR)] is False
    assert v[floor_target("POST /v1/verify-email (wrong)", report.WRITE_FLOOR)] is True
    assert v[floor_target("POST /v1/otp/verify (wrong)", report.WRITE_FLOOR)] is True
    assert v[floor_target("POST /v1/otp/send", report.SEND_FLOOR)] is False
    # The OpenID Provider's routes: userinfo against one read, the token
    # endpoint (one batch) against one write.
    assert v[floor_target("GET /oauth/userinfo", report.D1_FLOOR)] is True
    assert v[floor_target("POST /oauth/token (wrong code)", report.WRITE_FLOOR)] is True
    # The cycle: 60 against the reference's 100 at 16 in flight.
    assert v["send-then-verify cycles: at least 70% of the plain OTP script's cycles/s at 16 in flight"] is False
    assert verdicts(run_with_cycles(service16=75.0))[
        "send-then-verify cycles: at least 70% of the plain OTP script's cycles/s at 16 in flight"] is True


def run_with_cycles(service16):
    results = run()
    next(c for c in results["cycles"] if c["worker"] == "service" and c["in_flight"] == 16)["cps"] = service16
    return report.finish(results)


def test_each_target_is_judged_at_its_threshold():
    v = verdicts(run())
    assert v["gzipped wasm at most 500 KB"] is True
    assert v["GET /v1/me: p99 at most 2x p50 at 1 connection"] is False
    assert v["POST /v1/verify-email (wrong): p99 at most 2x p50 at 1 connection"] is True
    # Argon2-bound and reference workloads have no tail target.
    tails = [t for t in v if "p99" in t]
    assert len(tails) == 7 and not any("login" in t or "baseline" in t for t in tails)


def test_a_wasm_over_the_budget_misses_its_target():
    results = run()
    results["wasm"]["service"]["gzip"] = 500_001
    assert verdicts(report.finish(results))["gzipped wasm at most 500 KB"] is False


def test_the_table_has_every_workload_and_every_target():
    results = run()
    table = report.markdown(results)
    for name in {w["workload"] for w in results["workloads"]}:
        assert f"| {name}" in table
    assert "| POST /v1/login (Argon2id) | 10 | 40.00 | 60.00 | 20 |" in table
    assert table.count("| **no** |") == sum(not t["met"] for t in results["targets"])
    assert "Test CPU, 2 cores" in table and "670,000 B before wasm-opt" in table
    assert "| GET /v1/me | 600 |" in table and "| 86% |" in table
    assert "| plain OTP script (reference) | 16 | 100.0 |" in table and "| 60% |" in table


def test_the_chart_is_svg_with_two_bars_per_workload():
    results = run()
    root = ET.fromstring(report.svg(results))
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("height") == "11"]
    workloads = {w["workload"] for w in results["workloads"]} - {report.BASELINE}
    assert len(bars) == 2 * len(workloads)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "60%" in texts and "GET /v1/me" in texts


def test_write_replaces_only_the_readme_block_and_appends_history(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{report.README_START}\nold table\n{report.README_END}\nafter\n")
    results = run()
    report.write(results, tmp_path, readme)
    report.write(results, tmp_path, readme)
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{report.README_END}\nafter\n")
    assert "old table" not in text and text.count(report.README_START) == 1
    assert "GET /v1/me" in text and "bench/results/latest.svg" in text
    assert json.loads((tmp_path / "latest.json").read_text())["targets"] == results["targets"]
    history = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(history) == 2 and json.loads(history[0])["ratios_32"]["GET /v1/me"] == 0.6
    assert json.loads(history[0])["cycles"]["service@16"] == 60.0


def test_each_routes_cpu_is_its_native_time_scaled_by_the_hash_factor():
    results = run()
    # The worker's hash: p50 of login minus p50 of me at one connection, 38 ms, over 29 ms native.
    assert results["micro"]["wasm_over_native"] == pytest.approx(38.0 / 29.0)
    login, me, token = results["cpu"]
    assert login["worker_ms"] == pytest.approx(29.5 * 38.0 / 29.0) and login["free_plan"] is False
    assert me["free_plan"] is True
    table = report.markdown(results)
    assert "| `POST /v1/login` | 1 | 29.500 | 0.00 | 38.66 | no: paid plan |" in table


def test_a_token_answer_adds_its_two_signatures_measured_in_the_worker():
    results = run()
    # (9 - 6) / 2: half a successful redemption over a refused one.
    assert results["micro"]["rs256_sign_worker_ms"] == pytest.approx(1.5)
    token = results["cpu"][2]
    assert token["jwt_ms"] == pytest.approx(3.0)
    assert token["worker_ms"] == pytest.approx(0.02 * 38.0 / 29.0 + 3.0)
    assert "One RS256 signature in the worker (WebCrypto): at most 1.50 ms" in report.markdown(results)
