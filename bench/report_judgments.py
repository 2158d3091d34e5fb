"""The judgments section of bench/RESULTS.md: the judge step's time and memory on simulated batches, and
how close the fitted models come to the truth the batches were simulated from."""

from __future__ import annotations

from typing import Any

CPU_GOAL_S = 60.0  # a million sessions judged on one worker's CPU
MEMORY_GOAL_MB = 1024.0
GAP_GOAL = 0.005  # PBM's held-out log-likelihood below the true model's, at a million sessions
MODELS = ("rank_ctr", "pair_ctr", "pbm", "ubm")


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _largest(judgments: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    size = max(judgments["runs"], key=int)
    return int(size), judgments["runs"][size]


def judgments_summary(judgments: dict[str, Any]) -> list[list[str]]:
    size, run = _largest(judgments)
    at = f"{size:,} sessions"
    return [
        [
            f"Judgments: judge step CPU ({at})",
            f"< {CPU_GOAL_S:g} s",
            f"{run['cpu_s']:.1f} s",
            _met(run["cpu_s"] < CPU_GOAL_S),
        ],
        [
            f"Judgments: judge step peak memory ({at})",
            "< 1 GB",
            f"{run['peak_rss_mb']:.0f} MB",
            _met(run["peak_rss_mb"] < MEMORY_GOAL_MB),
        ],
        [
            f"Judgments: PBM held-out log-likelihood below the true model's ({at})",
            f"<= {GAP_GOAL}",
            f"{run['gap_to_truth']['pbm']:.4f}",
            _met(run["gap_to_truth"]["pbm"] <= GAP_GOAL),
        ],
    ]


def judgments_section(judgments: dict[str, Any]) -> list[str]:
    runs = judgments["runs"]
    lines = [
        "## Judgments (click models)",
        "",
        f"Simulated batches ({judgments['queries']:,} queries, {judgments['candidates']} candidates each, "
        f"{judgments['positions']} positions, a known truth) judged in a fresh process; how and what the figures "
        "say: [docs/benchmarks.md](../docs/benchmarks.md#judgments).",
        "",
    ]
    header = ["sessions", "distinct rows", "pairs", "CPU s", "fit CPU s", "wall s", "peak MB", "EM steps"]
    header += ["exam. max error"]
    lines += [f"| {' | '.join(header)} |", "|" + "|".join(["---:"] * len(header)) + "|"]
    for size, run in runs.items():
        cells = [f"{int(size):,}", f"{run['distinct_rows']:,}", f"{run['pairs']:,}", f"{run['cpu_s']:.1f}"]
        cells += [f"{run['fit_cpu_s']:.1f}", f"{run['wall_s']:.1f}", f"{run['peak_rss_mb']:.0f}"]
        cells += [f"{run['iterations']}{'' if run['converged'] else ' (not converged)'}"]
        cells += [f"{run['examination_max_error']:.4f}"]
        lines.append(f"| {' | '.join(cells)} |")
    lines += [
        "",
        "Held-out mean log-likelihood per impression, (how far below the true model's), [perplexity, positions 1..10].",
        "",
        "| sessions | true model | " + " | ".join(MODELS) + " |",
        "|---:|---:|" + "---:|" * len(MODELS),
    ]
    for size, run in runs.items():
        cells = [f"{int(size):,}", f"{run['true_log_likelihood']:.4f}"]
        cells += [
            f"{run['log_likelihood'][name]:.4f} (-{run['gap_to_truth'][name]:.4f}) [{run['perplexity'][name]:.4f}]"
            for name in MODELS
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return lines
