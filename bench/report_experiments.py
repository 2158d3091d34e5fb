"""The experiments section of bench/RESULTS.md: sessions needed for 80 % power, A/B against interleaving
(how it is measured: docs/benchmarks.md#experiments)."""

from __future__ import annotations

from typing import Any

LABELS = {
    "ab_click_through_rate": "A/B test on CTR (pooled two-proportion z-test)",
    "ab_mean_reciprocal_rank": "A/B test on MRR (Welch)",
    "interleaving": "Team-draft interleaving (sign test)",
}


def experiments_section(experiments: dict[str, Any]) -> list[str]:
    rankers = experiments["rankers"]
    interleaving = experiments["methods"]["interleaving"]["sessions"]
    lines = [
        "## Experiments: sessions needed to tell two rankers apart",
        "",
        f"Simulated (world seed {experiments['world_seed']}, {experiments['repeats']} experiments per size, "
        f"{experiments['seconds']:g} s): control ranker true CTR {rankers['control']['click_through_rate']:.1%}, "
        f"better ranker {rankers['better']['click_through_rate']:.1%}; least sessions with 80 % power at p < 0.05.",
        "",
        "| Method | Sessions for 80 % power | Power measured there | Against interleaving |",
        "|---|---:|---:|---:|",
    ]
    for name, label in LABELS.items():
        figures = experiments["methods"][name]
        ratio = figures["sessions"] / interleaving
        lines.append(f"| {label} | {figures['sessions']:,} | {figures['power']:.0%} | {ratio:.1f}x |")
    lines += ["", f"A/B on CTR needs {experiments['ratio_ab_ctr_to_interleaving']:g}x the sessions interleaving needs."]
    return lines
