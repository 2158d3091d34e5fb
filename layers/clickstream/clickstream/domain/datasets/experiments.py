"""The experiments report (contract 15.2), computed while the ranges are written, and across releases (15.3).

Each range adds its sessions to an `ExperimentAggregate`; what it keeps adds up exactly, whatever cut the
ranges (or the batches) took: per experiment and variant, integer counts of sessions, of sessions with
results (not interleaved) and of those clicked, and the sessions by best clicked position, from which the
sum of reciprocal ranks and the sum of their squares follow exactly (no float summed in range order); per
interleaved experiment, the sessions, each team's wins and the ties. `merge_sums` adds such sums up (ranges
of a batch, or batches of an experiment) and `experiment_report` turns them into the report.

Sums as JSON: {"<experiment id>": {"variants": {"<variant>": {"sessions", "with_results", "clicked",
"best_positions": {"<position>": sessions}}}, "interleaving": {"sessions", "wins": {"<team>": n}, "ties"}
or null}}.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clickstream.domain.datasets.metrics import CLICK, first_positions
from clickstream.domain.datasets.statistics import (
    Difference,
    Moments,
    mean_difference,
    mean_interval,
    proportion_difference,
    sample_ratio_p_value,
    sign_test,
    wilson,
)
from clickstream.records import StoredEvent

BASELINE = "control"
Sums = dict[str, Any]


@dataclass
class _Variant:
    sessions: int = 0
    with_results: int = 0
    clicked: int = 0
    best_positions: Counter[int] = field(default_factory=Counter)


@dataclass
class _Interleaving:
    sessions: int = 0
    wins: Counter[str] = field(default_factory=Counter)  # every team seen, with 0 until it wins
    ties: int = 0


@dataclass
class ExperimentAggregate:
    """What the sessions of one range contribute to the experiments report."""

    variants: dict[tuple[str, str], _Variant] = field(default_factory=dict)
    interleaving: dict[str, _Interleaving] = field(default_factory=dict)

    def add(self, experiment: str | None, document: dict[str, Any], events: list[StoredEvent]) -> None:
        """One exported session: its experiment tag (JSON text, None when untagged), search document and events."""
        if experiment is None:
            return
        tag = json.loads(experiment)
        variant = self.variants.setdefault((tag["id"], tag["variant"]), _Variant())
        variant.sessions += 1
        results = document.get("search_results") or []
        clicks = [event.object_id for event in events if event.event_type == CLICK]
        teams = [result.get("team") for result in results]
        if any(team is not None for team in teams):
            self._add_interleaved(tag["id"], results, clicks)
        elif results:
            variant.with_results += 1
            variant.clicked += bool(clicks)
            positions = first_positions(results)
            clicked = [positions[object_id] for object_id in clicks if object_id in positions]
            if clicked:
                variant.best_positions[min(clicked)] += 1

    def _add_interleaved(self, experiment_id: str, results: list[dict[str, Any]], clicks: list[str]) -> None:
        """Team-draft credit: the team with more distinct clicked results wins the session, or it is a tie."""
        credit = self.interleaving.setdefault(experiment_id, _Interleaving())
        credit.sessions += 1
        credit.wins.update({str(result["team"]): 0 for result in results if result.get("team") is not None})
        positions = first_positions(results)
        clicked = {positions[object_id] for object_id in clicks if object_id in positions}
        per_team = Counter(
            str(results[position - 1]["team"]) for position in clicked if results[position - 1].get("team") is not None
        )
        if not per_team:
            return  # no click on a teamed result: not counted
        (leader, most), *rest = per_team.most_common()
        if rest and rest[0][1] == most:
            credit.ties += 1
        else:
            credit.wins[leader] += 1

    def sums(self) -> Sums:
        total: Sums = {}
        for (experiment_id, name), variant in sorted(self.variants.items()):
            entry = total.setdefault(experiment_id, {"variants": {}, "interleaving": None})
            entry["variants"][name] = {
                "sessions": variant.sessions,
                "with_results": variant.with_results,
                "clicked": variant.clicked,
                "best_positions": {str(position): count for position, count in sorted(variant.best_positions.items())},
            }
        for experiment_id, credit in self.interleaving.items():
            total[experiment_id]["interleaving"] = {
                "sessions": credit.sessions,
                "wins": dict(sorted(credit.wins.items())),
                "ties": credit.ties,
            }
        return total


def merge_sums(parts: Iterable[Sums]) -> Sums:
    """Sums of ranges (or of batches), added up; experiments and their members in ascending order."""
    variants: dict[str, dict[str, dict[str, Any]]] = {}
    credits: dict[str, dict[str, Any]] = {}
    for part in parts:
        for experiment_id, entry in part.items():
            for name, variant in entry["variants"].items():
                into = variants.setdefault(experiment_id, {}).setdefault(name, _empty_variant())
                for counter in ("sessions", "with_results", "clicked"):
                    into[counter] += variant[counter]
                into["best_positions"].update({int(k): v for k, v in variant["best_positions"].items()})
            if entry.get("interleaving") is not None:
                credit = credits.setdefault(experiment_id, {"sessions": 0, "wins": Counter(), "ties": 0})
                credit["sessions"] += entry["interleaving"]["sessions"]
                credit["ties"] += entry["interleaving"]["ties"]
                credit["wins"].update(entry["interleaving"]["wins"])
    return {
        experiment_id: {
            "variants": {
                name: {**variant, "best_positions": {str(p): c for p, c in sorted(variant["best_positions"].items())}}
                for name, variant in sorted(by_name.items())
            },
            "interleaving": None if experiment_id not in credits else _sorted_credit(credits[experiment_id]),
        }
        for experiment_id, by_name in sorted(variants.items())
    }


def _empty_variant() -> dict[str, Any]:
    return {"sessions": 0, "with_results": 0, "clicked": 0, "best_positions": Counter()}


def _sorted_credit(credit: dict[str, Any]) -> dict[str, Any]:
    return {"sessions": credit["sessions"], "wins": dict(sorted(credit["wins"].items())), "ties": credit["ties"]}


def reciprocal_rank_moments(variant: dict[str, Any]) -> Moments:
    """The sessions' reciprocal ranks (1 / best clicked position; 0 without a positioned click) summarised:
    the mean from the exact sum, the sample variance from the deviations (stable, and exact in the counts)."""
    n = variant["with_results"]
    if n == 0:
        return Moments(0, None, None)
    counts = {int(position): count for position, count in variant["best_positions"].items()}
    mean = math.fsum(count / position for position, count in counts.items()) / n
    if n < 2:
        return Moments(n, mean, None)
    unclicked = n - sum(counts.values())
    squares = [count * (1 / position - mean) ** 2 for position, count in counts.items()]
    return Moments(n, mean, math.fsum([*squares, unclicked * mean * mean]) / (n - 1))


def experiment_report(experiment_id: str, sums: Sums) -> dict[str, Any]:
    """One entry of `experiments` (contract 15.2) from an experiment's merged sums."""
    variants = sums["variants"]
    names = sorted(variants)
    baseline = BASELINE if BASELINE in variants else names[0]
    comparisons: list[dict[str, Any]] = []
    for name in names:
        if name == baseline:
            continue
        ctr = proportion_difference(
            (variants[name]["clicked"], variants[baseline]["clicked"]),
            (variants[name]["with_results"], variants[baseline]["with_results"]),
        )
        mrr = mean_difference(reciprocal_rank_moments(variants[name]), reciprocal_rank_moments(variants[baseline]))
        comparisons += [_comparison(name, baseline, "click_through_rate", ctr)]
        comparisons += [_comparison(name, baseline, "mean_reciprocal_rank", mrr)]
    return {
        "id": experiment_id,
        "sample_ratio_p_value": sample_ratio_p_value([variants[name]["sessions"] for name in names]),
        "variants": [_variant(name, variants[name]) for name in names],
        "comparisons": comparisons,
        "interleaving": None if sums.get("interleaving") is None else _interleaving(sums["interleaving"]),
    }


def experiments_report(sums: Sums) -> list[dict[str, Any]]:
    """`experiments`: one entry per experiment, ascending id."""
    return [experiment_report(experiment_id, sums[experiment_id]) for experiment_id in sorted(sums)]


def _variant(name: str, variant: dict[str, Any]) -> dict[str, Any]:
    return {
        "variant": name,
        "sessions": variant["sessions"],
        "sessions_with_results": variant["with_results"],
        "click_through_rate": wilson(variant["clicked"], variant["with_results"]).as_json(),
        "mean_reciprocal_rank": mean_interval(reciprocal_rank_moments(variant)).as_json(),
    }


def _comparison(name: str, baseline: str, metric: str, difference: Difference) -> dict[str, Any]:
    return {
        "variant": name,
        "baseline": baseline,
        "metric": metric,
        "difference": difference.difference,
        "low": difference.low,
        "high": difference.high,
        "p_value": difference.p_value,
    }


def _interleaving(credit: dict[str, Any]) -> dict[str, Any]:
    teams = sorted(credit["wins"])
    wins = {team: credit["wins"][team] for team in teams}
    decided = sum(wins.values()) + credit["ties"]
    two = len(teams) == 2
    return {
        "sessions": credit["sessions"],
        "teams": teams,
        "wins": wins,
        "ties": credit["ties"],
        "preference": (wins[teams[1]] - wins[teams[0]]) / decided if two and decided else None,
        "p_value": sign_test((wins[teams[0]], wins[teams[1]])) if two else None,
    }


# Their sums on the batch record (a 400 KB item, beside the 64 KB report) and their report in BatchExported
# (a 256 KB event): each experiment takes the larger of the two from this budget.
MAX_RECORDED_EXPERIMENTS_BYTES = 96_000


def recordable_sums(sums: Sums) -> tuple[dict[str, str], bool]:
    """The experiments the batch record keeps (id -> sums as JSON text), and whether any was left off: as many
    as fit the budget, the largest (most sessions) first. The manifest always has them all."""
    by_size = sorted(sums, key=lambda experiment_id: (-_sessions(sums[experiment_id]), experiment_id))
    kept: dict[str, str] = {}
    room = MAX_RECORDED_EXPERIMENTS_BYTES
    for experiment_id in by_size:
        report = json.dumps(experiment_report(experiment_id, sums[experiment_id]), ensure_ascii=False)
        text = json.dumps(sums[experiment_id], ensure_ascii=False, separators=(",", ":"))
        size = max(len(report.encode("utf-8")), len(text.encode("utf-8")))
        if size <= room:
            kept[experiment_id] = text
            room -= size
    return dict(sorted(kept.items())), len(kept) < len(sums)


def report_of_recorded(recorded: Mapping[str, str]) -> list[dict[str, Any]]:
    """`experiments` from a batch record's sums (GET /batch, BatchExported)."""
    return experiments_report({experiment_id: json.loads(text) for experiment_id, text in recorded.items()})


def _sessions(sums: dict[str, Any]) -> int:
    return sum(variant["sessions"] for variant in sums["variants"].values())
