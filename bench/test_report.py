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
    share = {"GET /v1/me": 0.6, "POST /v1/verify-email (wrong)": 0.5, "POST /v1/otp/verify (wrong)": 0.4,
             "POST /v1/login": 0.01, report.D1_FLOOR: 0.3, **overrides}
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
        "micro": {"argon2id_hash_native_ms": 29.0, "code_generate_digest_compare_us": 1.7},
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


def test_each_target_is_judged_at_its_threshold():
    v = verdicts(run())
    assert v["GET /v1/me: at least 50% of the baseline's req/s at 32 connections"] is True
    assert v["POST /v1/verify-email (wrong): at least 50% of the baseline's req/s at 32 connections"] is True
    assert v["POST /v1/otp/verify (wrong): at least 50% of the baseline's req/s at 32 connections"] is False
    assert v["gzipped wasm at most 350 KB"] is True
    assert v["GET /v1/me: p99 at most 2x p50 at 1 connection"] is False
    assert v["POST /v1/verify-email (wrong): p99 at most 2x p50 at 1 connection"] is True
    # Argon2-bound and reference workloads have no tail target.
    tails = [t for t in v if "p99" in t]
    assert len(tails) == 3 and not any("login" in t or report.D1_FLOOR in t for t in tails)


def test_a_wasm_over_the_budget_misses_its_target():
    results = run()
    results["wasm"]["service"]["gzip"] = 350_001
    assert verdicts(report.finish(results))["gzipped wasm at most 350 KB"] is False


def test_the_table_has_every_workload_and_every_target():
    results = run()
    table = report.markdown(results)
    for name in {w["workload"] for w in results["workloads"]}:
        assert f"| {name}" in table
    assert "| POST /v1/login (Argon2id) | 10 | 40.00 | 60.00 | 20 |" in table
    assert table.count("| **no** |") == sum(not t["met"] for t in results["targets"])
    assert "Test CPU, 2 cores" in table and "670,000 B before wasm-opt" in table


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
