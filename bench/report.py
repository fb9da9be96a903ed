"""Results: a table on the terminal, JSON and Markdown in bench/results/, PNG charts."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def throughput_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured jobs/s, zjobs first, with zjobs / that."""
    rows = [r for r in (results.get("throughput"), results.get("throughput_sync"),
                        results.get("throughput_thread"), results.get("user_case"),
                        results.get("user_submit"), results.get("relay")) if r]
    rows += results.get("peers", [])
    zjobs = (results.get("throughput") or {}).get("jobs_per_s")
    relay = (results.get("relay") or {}).get("jobs_per_s")
    for row in rows:
        row["zjobs_ratio"] = _ratio(zjobs, row.get("jobs_per_s"))
        row["relay_ratio"] = _ratio(row.get("jobs_per_s"), relay)
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [f"# zjobs benchmark\n\n`{meta['command']}` on {meta['date']} "
           f"({meta['machine']}).\n"]
    out += ["## Throughput (no-op jobs, end to end)\n",
            "| system | jobs | jobs/s | zjobs ÷ it | it ÷ relay | note |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    for row in throughput_rows(results):
        if "skipped" in row:
            out.append(f"| {row['name']} | - | - | - | - | skipped: {row['skipped']} |")
        else:
            out.append(f"| {row['name']} | {row['jobs']} | {row['jobs_per_s']:,.0f} | "
                       f"{row['zjobs_ratio']} | {row['relay_ratio']} | {row.get('note', '')} |")
    out += _ratios_md(results) + _cpu_md(results) + _rest_md(results)
    return "\n".join(out) + "\n"


ZJOBS_SCENARIOS = ("throughput", "throughput_sync", "throughput_thread", "user_case",
                   "user_submit")


def _ratios_md(results: dict[str, Any]) -> list[str]:
    """Each zjobs scenario divided by the relay and by each peer measured in the same run."""
    mine = [results[k] for k in ZJOBS_SCENARIOS if (results.get(k) or {}).get("jobs_per_s")]
    others = [r for r in [results.get("relay"), *results.get("peers", [])]
              if r and r.get("jobs_per_s")]
    if not mine or not others:
        return []
    out = ["\n## Each zjobs scenario ÷ the relay and each peer (same run)\n",
           "| zjobs scenario | " + " | ".join(r["name"] for r in others) + " |",
           "| --- |" + " ---: |" * len(others)]
    for row in mine:
        out.append(f"| {row['name']} | " + " | ".join(
            _ratio(row["jobs_per_s"], other["jobs_per_s"]) for other in others) + " |")
    return out + _targets_md(results)


CPU_ROLES = ("broker", "workers", "client", "total")


def _cpu_md(results: dict[str, Any]) -> list[str]:
    """CPU µs per job by process, for each zjobs throughput scenario of the run."""
    rows = [results[k] for k in ZJOBS_SCENARIOS if (results.get(k) or {}).get("cpu_us_per_job")]
    if not rows:
        return []
    out = ["\n## CPU per job by process (µs, from /proc over the whole run)\n",
           "| zjobs scenario | jobs/s | " + " | ".join(CPU_ROLES) + " |",
           "| --- | ---: |" + " ---: |" * len(CPU_ROLES)]
    for row in rows:
        cpu = row["cpu_us_per_job"]
        out.append(f"| {row['name']} | {row['jobs_per_s']:,.0f} | "
                   + " | ".join(f"{cpu.get(role, 0):,.0f}" for role in CPU_ROLES) + " |")
    return out


def _targets_md(results: dict[str, Any]) -> list[str]:
    """The targets of the user's case, met or not, from this run's numbers."""
    user = (results.get("user_case") or {}).get("jobs_per_s")
    relay = (results.get("relay") or {}).get("jobs_per_s")
    latency = results.get("latency") or {}
    user_latency = latency.get("user") or {}
    lags = [row.get("sse_max_lag_s") for row in
            (results.get("http") or {}).get("sse", [results.get("http") or {}])]
    checks = [
        ("user's case ≥ 0.5 × relay", user and relay and user / relay, 0.5, "x", True),
        ("user's case p50 < 1 ms (`result(submit())`)", user_latency.get("p50_ms"), 1.0,
         " ms", False),
        ("user's case p50 < 1 ms (`run()`)", (user_latency.get("run") or {}).get("p50_ms"),
         1.0, " ms", False),
        ("single-job p50 < 1 ms", latency.get("p50_ms"), 1.0, " ms", False),
        ("single-job p99 < 5 ms", latency.get("p99_ms"), 5.0, " ms", False),
        ("SSE worst lag < 1 s", min((x for x in lags if x is not None), default=None), 1.0,
         " s", False),
    ]
    out = ["\n## Targets\n", "| target | this run | met |", "| --- | ---: | --- |"]
    for title, value, bound, unit, at_least in checks:
        if value is None or value is False:
            continue
        met = value >= bound if at_least else value < bound
        out.append(f"| {title} | {value:.3g}{unit} | {'yes' if met else 'no'} |")
    return out


def _rest_md(results: dict[str, Any]) -> list[str]:
    return (_latency_md(results) + _scale_md(results.get("scale")) + _http_md(results.get("http"))
            + _faults_md(results.get("faults")) + _ha_md(results.get("ha")))


def _latency_md(results: dict[str, Any]) -> list[str]:
    rows = [(title, results[key]) for key, title in
            (("latency", "zjobs"), ("relay_latency", "relay (the limit)")) if results.get(key)]
    latency = results.get("latency") or {}
    extra = [("zjobs, `run()` (SUBMIT with wait)", latency.get("run")),
             ("zjobs, user's case: plain `def` task, `result(submit())`", latency.get("user")),
             ("zjobs, user's case: plain `def` task, `run()`",
              (latency.get("user") or {}).get("run"))]
    rows[1:1] = [(title, lat) for title, lat in extra if lat]
    if not rows:
        return []
    out = ["\n## Latency (one job at a time, submit to result)\n",
           "| system | jobs | p50 ms | p95 ms | p99 ms | mean ms |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for title, lat in rows:
        out.append(f"| {title} | {lat['jobs']} | {lat['p50_ms']:.3f} | {lat['p95_ms']:.3f} | "
                   f"{lat['p99_ms']:.3f} | {lat['mean_ms']:.3f} |")
    return out


def _scale_md(scale: dict[str, Any] | None) -> list[str]:
    if not scale:
        return []
    out = ["\n## Scale (queued with no worker, the broker restarted, then drained by 2 "
           "workers)\n",
           "| queued | submit/s | broker RSS MiB at 1/10, at all | restart to STATS s | "
           "RSS after restart MiB | drain/s | peak RSS MiB |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in scale["rows"]:
        out.append(f"| {row['queued']:,} | {row['submit_per_s']:,.0f} | "
                   f"{row.get('rss_tenth_mib', '-')}, {row.get('rss_queued_mib', '-')} | "
                   f"{row.get('restart_s', '-')} | {row.get('rss_restarted_mib', '-')} | "
                   f"{row['drain_per_s']:,.0f} | {row['rss_peak_after_drain_mib']} |")
    if scale.get("stopped"):
        out.append(f"\nStopped there: {scale['stopped']}.")
    return out


def _http_md(http: dict[str, Any] | None) -> list[str]:
    if not http:
        return []
    return ["\n## HTTP\n",
            f"- REST submits: {http['rest_submit_per_s']:,.0f}/s with "
            f"{http['rest_clients']} concurrent clients ({http['rest_submits']} jobs)",
            *[f"- {row['sse_clients']} SSE clients following `/events` while "
              f"{row['sse_jobs']:,} jobs ran, `--api-workers {row.get('api_workers', 1)}`: "
              f"worst lag {row['sse_max_lag_s']} s (median client's worst "
              f"{row['sse_median_client_lag_s']} s)" for row in http.get("sse", [http])]]


FAULT_COLUMNS = ("acknowledged", "lost", "executed_twice", "failed_without_running", "failed",
                 "client_errors", "rss_before_mib", "rss_after_mib")


def _faults_md(faults: dict[str, Any] | None) -> list[str]:
    if not faults:
        return []
    out = [f"\n## Faults under load ({faults['note']})\n",
           "| fault | " + " | ".join(c.replace("_", " ") for c in FAULT_COLUMNS) + " |",
           "| --- |" + " ---: |" * len(FAULT_COLUMNS)]
    for row in faults["rows"]:
        out.append(f"| {row['case']} | " + " | ".join(str(row[c]) for c in FAULT_COLUMNS) + " |")
    return out


def _ha_md(ha: dict[str, Any] | None) -> list[str]:
    if not ha:
        return []
    out = ["\n## High availability: PostgreSQL and a standby broker\n", f"{ha['note']}.\n",
           "| system | jobs | jobs/s | note |", "| --- | ---: | ---: | --- |"]
    for row in ha["throughput"]:
        if "skipped" in row:
            out.append(f"| {row['name']} | - | - | skipped: {row['skipped']} |")
        else:
            out.append(f"| {row['name']} | {row['jobs']} | {row['jobs_per_s']:,.0f} | "
                       f"{row.get('note', '')} |")
    load = ha["under_load"]
    out += [f"\n- failover, `kill -9` of the primary to the first job finished on the standby: "
            f"median {ha['failover_median_s']} s, max {ha['failover_max_s']} s over "
            f"{len(ha['failover_s'])} kills (target {ha['failover_target_s']} s)"
            + (f"; the standby answers after median {ha['failover_answered_median_s']} s"
               if "failover_answered_s" in ha else ""),
            *([f"- failover, SIGSTOP of the primary (its lease lapses): the standby answers "
               f"after median {ha['failover_frozen_answered_median_s']} s (max "
               f"{ha['failover_frozen_answered_max_s']} s), the first job finished on it after "
               f"median {ha['failover_frozen_median_s']} s (max {ha['failover_frozen_max_s']} "
               f"s) over {len(ha['failover_frozen_s'])} freezes (target "
               f"{ha['failover_frozen_target_s']} s)"] if "failover_frozen_s" in ha else []),
            f"- {load['case']}: {load['acknowledged']} acknowledged, {load['lost']} lost, "
            f"{load['executed_twice']} executed twice, {load['failed_without_running']} failed "
            f"without running, {load['client_errors']} client errors"]
    return out


def show(results: dict[str, Any], console: Console) -> None:
    table = Table(title="throughput (no-op jobs, end to end)")
    for column in ("system", "jobs", "jobs/s", "zjobs ÷ it", "note"):
        table.add_column(column, justify="right" if column in ("jobs", "jobs/s") else "left")
    for row in throughput_rows(results):
        if "skipped" in row:
            table.add_row(row["name"], "-", "-", "-", f"skipped: {row['skipped']}")
        else:
            table.add_row(row["name"], str(row["jobs"]), f"{row['jobs_per_s']:,.0f}",
                          row["zjobs_ratio"], row.get("note", ""))
    console.print(table)
    console.print("\n".join(_ratios_md(results) + _cpu_md(results) + _rest_md(results)))


def save(results: dict[str, Any]) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    light = dict(results)
    if "latency" in light:
        light["latency"] = {k: v for k, v in light["latency"].items() if k != "samples_ms"}
    paths = [RESULTS / "latest.json", RESULTS / "latest.md"]
    paths[0].write_text(json.dumps(light, indent=2) + "\n")
    paths[1].write_text(markdown(results))
    return paths + charts(results)


def charts(results: dict[str, Any]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    rows = [r for r in throughput_rows(results) if "jobs_per_s" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        names = [r["name"] for r in rows]
        colours = ["#f5a623" if n.startswith("zjobs") else "#7a8699" for n in names]
        ax.barh(names[::-1], [r["jobs_per_s"] for r in rows][::-1], color=colours[::-1])
        ax.set_xlabel("jobs/s (higher is better)")
        ax.set_title(f"No-op jobs end to end — {results['meta']['date']}")
        for y, row in enumerate(rows[::-1]):
            ax.text(row["jobs_per_s"], y, f" {row['jobs_per_s']:,.0f}", va="center")
        fig.tight_layout()
        made.append(RESULTS / "throughput.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)
    samples = (results.get("latency") or {}).get("samples_ms")
    if samples:
        fig, ax = plt.subplots(figsize=(9, 4))
        ax.hist(samples, bins=80, color="#4a90e2")
        lat = results["latency"]
        for key, style in (("p50_ms", "-"), ("p99_ms", "--")):
            ax.axvline(lat[key], color="#f5a623", linestyle=style, label=f"{key[:3]} {lat[key]} ms")
        ax.set_xlabel("round trip of one job, ms")
        ax.set_ylabel("jobs")
        ax.legend()
        ax.set_title("zjobs single-job round trip")
        fig.tight_layout()
        made.append(RESULTS / "latency.png")
        fig.savefig(made[-1], dpi=110)
        plt.close(fig)
    return made


def meta(command: str) -> dict[str, str]:
    import os

    return {"command": command, "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                       f"{platform.python_version()}"}
