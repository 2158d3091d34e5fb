"""The functions no route reaches, as deployed: the outbox on the tables' stream records, the export state
machine's steps, the release state machine's direct invocation and the erasure state machine's steps,
answering as in-process."""

from __future__ import annotations

from local.deployed import DeployedFunctions
from tests.conftest import local_functions
from tests.support.lambda_tier import State, run_erasure, run_pipeline, run_samples

BEFORE_RELEASE = ["register_session", "add_events", "use_for_improvement", "batch_release_direct"]


def test_a_release_is_announced_and_exported_as_in_process(deployed: DeployedFunctions, state: State) -> None:
    as_deployed = run_samples(deployed.invoke, BEFORE_RELEASE) + run_pipeline(deployed.invoke, state, "release-v1")
    state.reset()
    in_process = run_samples(local_functions().invoke, BEFORE_RELEASE)
    in_process += run_pipeline(local_functions().invoke, state, "release-v1")
    assert as_deployed == in_process
    by_step = {step.get("step") or step.get("stream") or step["sample"]: step for step in as_deployed}
    assert by_step["batch_release_direct"]["result"]["session_count"] == 1
    assert by_step["BatchesTable"]["records"] > 0
    assert by_step["ImprovementTasksTable"]["records"] >= 1
    assert by_step["plan"]["result"]["skip"] is False
    assert by_step["range"]["result"]["sessions"] == 1
    assert by_step["finish"]["result"]["parts"] == 1


def test_an_erasure_of_an_exported_users_sessions_runs_as_in_process(deployed: DeployedFunctions, state: State) -> None:
    """The packaged ErasureFunction rewrites the dataset as in-process (numpy and Jinja2 in its layer, the
    version calls on the bucket), from the same state."""
    as_deployed = run_samples(deployed.invoke, BEFORE_RELEASE) + run_pipeline(deployed.invoke, state, "release-v1")
    as_deployed += run_erasure(deployed.invoke)
    state.reset()
    in_process = run_samples(local_functions().invoke, BEFORE_RELEASE)
    in_process += run_pipeline(local_functions().invoke, state, "release-v1") + run_erasure(local_functions().invoke)
    assert as_deployed == in_process
    finished = as_deployed[-1]["result"]
    assert (finished["status"], finished["sessions"], finished["datasets_rewritten"]) == ("done", 1, 1)
    assert finished["events"] >= 1
