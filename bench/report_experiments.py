"""The experiments section of bench/RESULTS.md: sessions needed for 80 % power, A/B against interleaving."""

from __future__ import annotations

from typing import Any

LABELS = {
    "ab_click_through_rate": "A/B test on CTR (pooled two-proportion z-test)",
    "ab_mean_reciprocal_rank": "A/B test on MRR (Welch)",
    "interleaving": "Team-draft interleaving (sign test)",
}


def experiments_section(experiments: dict[str, Any]) -> list[str]:
    rankers = experiments["rankers"]
    control, better = rankers["control"], rankers["better"]
    interleaving = experiments["methods"]["interleaving"]["sessions"]
    lines = [
        "## Experiments: sessions needed to tell two rankers apart",
        "",
        "`bench/experiments.py` draws whole experiments from the seeded search world of "
        "`tests/support/simulation.py` (world seed "
        f"{experiments['world_seed']}: 200 queries of 20 documents, a position-based click model) with two rankers "
        f"of known quality: control (true CTR {control['click_through_rate']:.1%}) and a better one "
        f"({better['click_through_rate']:.1%}). Each experiment gets its p-value from the report's own functions; "
        f"power at n sessions is the share of {experiments['repeats']} experiments that find the better ranker "
        "better at p < 0.05, and the figure is the least n with 80 % power (doubling, then bisection to 5 %).",
        "",
        "| Method | Sessions for 80 % power | Power measured there | Against interleaving |",
        "|---|---:|---:|---:|",
    ]
    for name, label in LABELS.items():
        figures = experiments["methods"][name]
        ratio = figures["sessions"] / interleaving
        lines.append(f"| {label} | {figures['sessions']:,} | {figures['power']:.0%} | {ratio:.1f}x |")
    lines += [
        "",
        f"Interleaving needs **{experiments['ratio_ab_ctr_to_interleaving']:g}x fewer sessions** than an A/B test on "
        "CTR here: every interleaved session shows both rankers to the same user, so it compares them within one "
        "session instead of across users. Teams report 10-100x on production traffic; the ratio depends on how "
        "close the rankers are and on how users click (here every user follows one click model). "
        f"({experiments['seconds']:g} s.)",
    ]
    return lines
