"""The ``clickstream`` command line."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
import re
import sys
import tempfile
import textwrap
import webbrowser
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
from tqdm import tqdm

from . import __version__
from .auth import botocore_session
from .client import DEFAULT_POLL_SECONDS, Client
from .errors import ClickstreamError, ConfigurationError, ConnectionFailed, Forbidden, NotFound
from .judgments import judgment_lines, judgments_of, opened

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
URL_ENV = "CLICKSTREAM_URL"
STACK_URL_OUTPUT = "ApiUrl"
TASK_STATUSES = ("pending", "done", "failed")
HELP_WIDTH = 100
MIN_POLL_SECONDS = 0.1
ERASURE_COUNTS = ("sessions", "events", "tasks", "datasets_rewritten")

Command = Callable[[Client, argparse.Namespace], int]
# Checks a command's arguments before any request, failing through the parser (exit status 2).
Check = Callable[[argparse.ArgumentParser, argparse.Namespace], None]

DESCRIPTION = """\
Command line for the clickstream API: export the sessions of a batch or its relevance judgments, look at
batches and release one, schedule sessions for model improvement and report improvement tasks as done,
erase a user's data on request."""

EPILOG = f"""\
where the API is:
  --url URL      the API's root URL, e.g. http://127.0.0.1:3000 for `make run` (default: ${URL_ENV})
  --stack NAME   read the URL from the {STACK_URL_OUTPUT} output of a deployed CloudFormation stack;
                 requests are then signed with IAM (SigV4), as a deployed API requires

credentials (with --iam or --stack) come from the standard AWS chain: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, --profile or AWS_PROFILE (including SSO and assumed roles), container and
instance roles. 429, 503 and connection failures are retried, honouring Retry-After.

examples:
  clickstream --url http://127.0.0.1:3000 batches --limit 5
  clickstream --stack clickstream --profile prod sessions b-1700000000000-0123456789ab --out batch.jsonl
  clickstream --stack clickstream use --from ids.txt

exit status: 0 on success, 1 when the API answered an error or could not be reached, 2 on bad usage.
Run `clickstream COMMAND --help` for a command's options."""


def _say_retrying(url: str) -> Callable[[str], None]:
    """A line on stderr per retry, so a refused connection is not 16 s of silence."""

    def say(why: str) -> None:
        print(f"retrying {url}: {why}", file=sys.stderr, flush=True)

    return say


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit_url: str | None = args.url or (None if args.stack else os.environ.get(URL_ENV) or None)
    if explicit_url is None and not args.stack:
        parser.error(f"say where the API is: --url URL, --stack NAME, or set {URL_ENV}")
    if explicit_url is not None and not explicit_url.startswith(("http://", "https://")):
        parser.error(f"the API's URL must start with http:// or https://, not {explicit_url!r}")
    if args.check is not None:
        args.check(args.command_parser, args)
    _write_utf8()
    try:
        url = explicit_url or stack_api_url(args.stack, region=args.region, profile=args.profile)
        iam = args.iam or bool(args.stack)
        with Client(url, iam=iam, region=args.region, profile=args.profile, on_retry=_say_retrying(url)) as client:
            run: Command = args.run
            status = run(client, args)
        sys.stdout.flush()
        return status
    except ClickstreamError as error:
        report_error(error)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader (e.g. `head`) has all it wanted: stop quietly, and keep Python's exit-time flush of
        # stdout from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:  # e.g. --out in a folder that does not exist
        print(f"error: {error.strerror or error}" + (f": {error.filename}" if error.filename else ""), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clickstream",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help=f"root URL of the API (default: ${URL_ENV})")
    where.add_argument("--stack", metavar="NAME", help=f"CloudFormation stack whose {STACK_URL_OUTPUT} output to use")
    parser.add_argument("--iam", action="store_true", help="sign requests with SigV4 (implied by --stack)")
    parser.add_argument("--region", help="AWS region (default: the one in an execute-api URL, else the profile's)")
    parser.add_argument("--profile", help="AWS profile for credentials and region (default: $AWS_PROFILE)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = _Commands(parser)
    _add_export_commands(commands)
    _add_reading_commands(commands)
    _add_release_and_use_commands(commands)
    _add_task_commands(commands)
    _add_erasure_commands(commands)
    return parser


class _Commands:
    """The parser's subcommands, each with its help laid out the same way."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(
        self, name: str, run: Command, summary: str, details: str, examples: str, *, check: Check | None = None
    ) -> argparse.ArgumentParser:
        command = self._commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(f"{summary}. {details}", width=HELP_WIDTH),
            epilog=f"examples:\n{examples}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.set_defaults(run=run, check=check, command_parser=command)
        return command


def _add_export_commands(commands: _Commands) -> None:
    sessions = commands.add(
        "sessions",
        run_sessions,
        "Export every session of a batch as JSON Lines",
        "One session per line, ascending by session_number, each with its first events. A progress bar is "
        "shown on stderr when it is a terminal; with --out the file appears only once the export is complete.",
        "  clickstream --url http://127.0.0.1:3000 sessions b-1700000000000-0123456789ab > batch.jsonl\n"
        "  clickstream --stack clickstream sessions b-1700000000000-0123456789ab --out batch.jsonl "
        "--events-limit 1000",
    )
    sessions.add_argument("batch_id", metavar="BATCH_ID", help="the batch to export (see `clickstream batches`)")
    sessions.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    sessions.add_argument(
        "--events-limit",
        type=_integer(0, 1000),
        default=100,
        metavar="N",
        help="events per session, 0..1000 (default 100)",
    )
    sessions.add_argument(
        "--after", type=_integer(0), default=0, metavar="N", help="start after session number N, to resume (default 0)"
    )
    sessions.add_argument(
        "--page-size",
        type=_integer(1, 1000),
        default=100,
        metavar="N",
        help="sessions per request, 1..1000 (default 100)",
    )

    judgments = commands.add(
        "judgments",
        run_judgments,
        "Export the relevance judgments of an exported batch as JSON Lines",
        "One line per (query, object) pair, sorted by query then object_id, with PBM's position-debiased "
        "attractiveness. Read from where the batch's dataset keeps them: s3:// with your own AWS credentials "
        "(--profile, --region), file:// for `make run`'s lake. A progress bar is shown on stderr when it is a "
        "terminal; with --out the file appears only once complete.",
        "  clickstream --url http://127.0.0.1:3000 judgments b-1700000000000-0123456789ab > judgments.jsonl\n"
        "  clickstream --stack clickstream --profile prod judgments b-1700000000000-0123456789ab --out j.jsonl",
    )
    judgments.add_argument("batch_id", metavar="BATCH_ID", help="an exported batch (see `clickstream batches`)")
    judgments.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _add_reading_commands(commands: _Commands) -> None:
    batch = commands.add(
        "batch",
        run_batch,
        "Show one batch",
        "Its status (collecting or released), release, dataset and quality metrics, as JSON.",
        "  clickstream --url http://127.0.0.1:3000 batch b-1700000000000-0123456789ab",
    )
    batch.add_argument("batch_id", metavar="BATCH_ID", help="the batch to show")

    experiment = commands.add(
        "experiment",
        run_experiment,
        "Show one experiment across releases",
        "Its variants (sessions, CTR and MRR with 95 %% intervals), each variant against the baseline (difference, "
        "interval, p-value), the sample-ratio check and the interleaving credit, over every exported batch that "
        "has it, as JSON.",
        "  clickstream --url http://127.0.0.1:3000 experiment ranker-v7\n"
        "  clickstream --stack clickstream experiment ranker-v7 | jq '.comparisons[] | select(.p_value < 0.05)'",
    )
    experiment.add_argument("experiment_id", metavar="ID", help="the experiment id the front end tagged sessions with")

    report = commands.add(
        "report",
        run_report,
        "Save an exported batch's report page (HTML)",
        "The page of the batch's export: headline metrics against the previous release, click positions, "
        "queries to look at, experiments, trend. One self-contained file; --open shows it in the browser.",
        "  clickstream --url http://127.0.0.1:3000 report b-1700000000000-0123456789ab --out report.html --open",
    )
    report.add_argument("batch_id", metavar="BATCH_ID", help="an exported batch (see `clickstream batches`)")
    report.add_argument("--out", metavar="FILE", help="write the page to FILE (default: report-BATCH_ID.html)")
    report.add_argument("--open", action="store_true", help="open the written page in the web browser")

    batches = commands.add(
        "batches",
        run_batches,
        "List batches, newest first, as JSON Lines",
        "The collecting batch, if any, comes first.",
        "  clickstream --url http://127.0.0.1:3000 batches --limit 5\n"
        "  clickstream --stack clickstream batches | jq -r 'select(.status == \"released\") | .batch_id'",
    )
    batches.add_argument("--limit", type=_integer(1), metavar="N", help="list at most N batches (default: all)")


def _add_release_and_use_commands(commands: _Commands) -> None:
    release = commands.add(
        "release",
        run_release,
        "Release the collecting batch",
        "Freezes its sessions; the next session registered opens a new batch. Repeating a RELEASE_ID returns "
        "the same release, so a retry never releases twice.",
        "  clickstream --stack clickstream release release-2024-06-01",
    )
    release.add_argument(
        "release_id",
        metavar="RELEASE_ID",
        help="your name for this release; the same name again returns the same release",
    )

    session = commands.add(
        "session",
        run_session,
        "Show one session with its events",
        "As JSON, with its batch_id.",
        "  clickstream --url http://127.0.0.1:3000 session sess-abc123 --events-limit 10",
    )
    session.add_argument("session_id", metavar="SESSION_ID", help="the session to show")
    session.add_argument(
        "--events-limit",
        type=_integer(0, 1000),
        default=1000,
        metavar="N",
        help="events to show, 0..1000 (default 1000)",
    )

    use = commands.add(
        "use",
        run_use,
        "Schedule sessions for model improvement",
        "Sends the ids concurrently. Each answer (scheduled, or skipped with its reason) is printed as a JSON "
        "line; ids not found or failing are listed on stderr, then a summary. Exits 1 when any id was not "
        "found or failed. Scheduling a session again while its task is pending changes nothing.",
        "  clickstream --url http://127.0.0.1:3000 use sess-abc123 sess-def456\n"
        "  clickstream --stack clickstream use --from ids.txt\n"
        "  jq -r .session_id batch.jsonl | clickstream --stack clickstream use --from -",
        check=check_use,
    )
    use.add_argument("session_ids", nargs="*", metavar="SESSION_ID", help="ids of the sessions to schedule")
    use.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="read the ids from FILE, one per line (- for stdin); blank lines are ignored",
    )
    use.add_argument(
        "--workers", type=_integer(1, 32), default=8, metavar="N", help="requests in flight at once, 1..32 (default 8)"
    )


def _add_task_commands(commands: _Commands) -> None:
    tasks = commands.add(
        "tasks",
        run_tasks,
        "List improvement tasks, oldest first, as JSON Lines",
        "For workers that poll instead of reading the queue.",
        "  clickstream --stack clickstream tasks\n  clickstream --url http://127.0.0.1:3000 tasks --status failed",
    )
    tasks.add_argument(
        "--status", choices=TASK_STATUSES, default="pending", help="tasks with this status (default pending)"
    )

    complete = commands.add(
        "complete",
        run_complete,
        "Report a session's improvement task as done or failed",
        "Repeating the same report returns the same task.",
        "  clickstream --stack clickstream complete sess-abc123 --status done\n"
        "  clickstream --stack clickstream complete sess-abc123 --status failed --error 'model diverged'",
    )
    complete.add_argument("session_id", metavar="SESSION_ID", help="the session whose task is reported")
    complete.add_argument("--status", choices=("done", "failed"), required=True, help="the task's outcome")
    complete.add_argument("--error", metavar="TEXT", help="what went wrong (with --status failed), up to 1000 chars")


def _add_erasure_commands(commands: _Commands) -> None:
    erase = commands.add(
        "erase",
        run_erase,
        "Erase everything the service keeps of a user",
        "Every session registered with that user_id, its events and improvement task, and the user's lines in "
        "every exported dataset (rewritten, earlier object versions deleted). Prints the erasure as JSON; asking "
        "again while it is pending or running returns the same erasure. With --wait, follows it on stderr until "
        "it is done (exit 0) or failed (exit 1). Sessions registered without a user_id cannot be found by user.",
        "  clickstream --stack clickstream erase user-8841\n"
        "  clickstream --stack clickstream erase user-8841 --wait --poll 30",
        check=check_erase,
    )
    erase.add_argument("user_id", metavar="USER_ID", help="the user_id as the front end sent it (not a pseudonym)")
    erase.add_argument("--wait", action="store_true", help="follow the erasure until it is done or failed")
    erase.add_argument(
        "--poll",
        type=_seconds(MIN_POLL_SECONDS),
        metavar="SECONDS",
        help=f"with --wait: seconds between reads of its status (default {DEFAULT_POLL_SECONDS:g})",
    )

    erasure = commands.add(
        "erasure",
        run_erasure,
        "Show one erasure",
        "Its status (pending, running, done or failed), times, what it erased (sessions, events, tasks, "
        "datasets_rewritten) and, when failed, the error, as JSON. It never shows the user id.",
        "  clickstream --stack clickstream erasure e-1795348800000-0123456789ab",
    )
    erasure.add_argument("erasure_id", metavar="ERASURE_ID", help="the erasure_id `clickstream erase` printed")


# Commands


def run_sessions(client: Client, args: argparse.Namespace) -> int:
    total = _released_session_count(client, args.batch_id) if args.after == 0 else None
    sessions = client.iter_sessions(
        args.batch_id, after_number=args.after, page_size=args.page_size, events_limit=args.events_limit
    )
    _write_lines(args, (_json_line(session) for session in sessions), total=total, unit="session")
    return EXIT_OK


def run_judgments(client: Client, args: argparse.Namespace) -> int:
    judgments = judgments_of(client.get_batch(args.batch_id))
    with opened(judgments["uri"], profile=args.profile, region=args.region) as stored:
        _write_lines(args, judgment_lines(stored), total=judgments.get("pairs"), unit="judgment")
    return EXIT_OK


def run_batch(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.get_batch(args.batch_id))
    return EXIT_OK


def run_experiment(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.get_experiment(args.experiment_id))
    return 0


def run_report(client: Client, args: argparse.Namespace) -> int:
    page = client.get_report(args.batch_id)
    path = Path(args.out or f"report-{re.sub(r'[^A-Za-z0-9._-]', '_', args.batch_id)}.html")
    path.write_text(page, encoding="utf-8")
    print(f"report written to {path}", file=sys.stderr)
    if args.open:
        webbrowser.open(path.resolve().as_uri())
    return EXIT_OK


def run_batches(client: Client, args: argparse.Namespace) -> int:
    page_size = min(args.limit, 100) if args.limit else 20
    _print_json_lines(itertools.islice(client.list_batches(page_size=page_size), args.limit))
    return EXIT_OK


def run_release(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.release(args.release_id))
    return EXIT_OK


def run_session(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.get_session(args.session_id, events_limit=args.events_limit))
    return EXIT_OK


def run_tasks(client: Client, args: argparse.Namespace) -> int:
    _print_json_lines(client.iter_tasks(args.status))
    return EXIT_OK


def run_complete(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.complete_task(args.session_id, args.status, args.error))
    return EXIT_OK


def check_erase(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.poll is not None and not args.wait:
        parser.error("--poll goes with --wait")


def run_erase(client: Client, args: argparse.Namespace) -> int:
    erasure = client.erase_user(args.user_id)
    if not args.wait:
        _print_json(erasure)
        return EXIT_OK
    erasure_id = erasure.get("erasure_id")
    if not isinstance(erasure_id, str):
        raise ClickstreamError(f"the API's answer has no erasure_id: {erasure!r:.200}")
    try:
        erasure = client.wait_for_erasure(
            erasure_id, poll_seconds=args.poll or DEFAULT_POLL_SECONDS, on_progress=ErasureProgress()
        )
    except KeyboardInterrupt:
        print(f"stopped waiting; the erasure goes on: clickstream erasure {erasure_id}", file=sys.stderr)
        raise
    _print_json(erasure)
    if erasure.get("status") == "failed":
        print(f"error: erasure {erasure_id} failed: {erasure.get('error')}; erase the user again", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_erasure(client: Client, args: argparse.Namespace) -> int:
    _print_json(client.get_erasure(args.erasure_id))
    return EXIT_OK


class ErasureProgress:
    """A line on stderr each time an erasure's status or counts change (not at every read)."""

    def __init__(self) -> None:
        self._last: str | None = None

    def __call__(self, erasure: dict[str, Any]) -> None:
        counts = ", ".join(f"{name} {erasure.get(name, 0)}" for name in ERASURE_COUNTS)
        line = f"{erasure.get('erasure_id')}: {erasure.get('status')} ({counts})"
        if line != self._last:
            print(line, file=sys.stderr, flush=True)
            self._last = line


@dataclass
class UseSummary:
    scheduled: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    not_found: int = 0
    failed: int = 0
    not_attempted: int = 0

    @property
    def succeeded(self) -> bool:
        return not (self.not_found or self.failed or self.not_attempted)

    def record(self, session_id: str, outcome: Future[dict[str, Any]], progress: tqdm[Any]) -> ClickstreamError | None:
        """Counts one id's outcome, prints its answer or problem; returns an error every id would meet."""
        progress.update()
        try:
            answer = outcome.result()
        except CancelledError:
            self.not_attempted += 1
        except NotFound:
            self.not_found += 1
            progress.write(f"not found: {session_id}", file=sys.stderr)
        except (Forbidden, ConnectionFailed, ConfigurationError) as error:
            self.failed += 1
            return error
        except ClickstreamError as error:
            self.failed += 1
            progress.write(f"failed: {session_id}: {error}", file=sys.stderr)
        else:
            if answer.get("status") == "scheduled":
                self.scheduled += 1
            else:
                self.skipped[str(answer.get("reason"))] += 1
            progress.write(_json_line(answer), end="", file=sys.stdout)
        return None

    def __str__(self) -> str:
        skipped = f"skipped {self.skipped.total()}"
        if self.skipped:
            skipped += " (" + ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items())) + ")"
        parts = [f"scheduled {self.scheduled}", skipped, f"not found {self.not_found}", f"failed {self.failed}"]
        if self.not_attempted:
            parts.append(f"not attempted {self.not_attempted}")
        return ", ".join(parts)


def check_use(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.session_ids and args.from_file:
        parser.error("give SESSION_IDs or --from FILE, not both")
    if not args.session_ids and not args.from_file:
        parser.error("give the SESSION_IDs to schedule, or --from FILE")
    if args.from_file:
        try:
            text = sys.stdin.read() if args.from_file == "-" else Path(args.from_file).read_text(encoding="utf-8")
        except OSError as error:
            parser.error(f"cannot read {args.from_file}: {error.strerror}")
        args.session_ids = text.splitlines()
    # Once each: scheduling is idempotent, and the summary counts sessions.
    args.session_ids = list(dict.fromkeys(line.strip() for line in args.session_ids if line.strip()))


def run_use(client: Client, args: argparse.Namespace) -> int:
    summary = UseSummary()
    # An error that every other id would meet too (no access, no connection) stops the run.
    fatal: ClickstreamError | None = None
    progress = tqdm(total=len(args.session_ids), unit="session", file=sys.stderr, disable=not _is_terminal(sys.stderr))
    pool = ThreadPoolExecutor(max_workers=args.workers)
    with progress:
        try:
            futures = {
                pool.submit(client.use_for_improvement, session_id): session_id for session_id in args.session_ids
            }
            unrecorded = set(futures)
            for outcome in as_completed(futures):
                unrecorded.discard(outcome)
                fatal = summary.record(futures[outcome], outcome, progress)
                if fatal is not None:
                    break
        finally:
            # Stopped early (a fatal error, Ctrl-C, a closed pipe): send nothing more of what is queued.
            pool.shutdown(wait=True, cancel_futures=True)
        # as_completed never yields futures cancelled by shutdown: count them (and the last in flight) here.
        for outcome in unrecorded:
            summary.record(futures[outcome], outcome, progress)
    if fatal is not None:
        report_error(fatal)
    print(summary, file=sys.stderr)
    return EXIT_OK if summary.succeeded else EXIT_FAILED


# Resolving --stack


def cloudformation_client(session: botocore.session.Session, region: str | None) -> CloudFormationClient:
    return cast("CloudFormationClient", session.create_client("cloudformation", region_name=region))


def stack_api_url(stack: str, *, region: str | None, profile: str | None) -> str:
    """The ``ApiUrl`` output of a CloudFormation stack."""
    session = botocore_session(profile)
    try:
        cloudformation = cloudformation_client(session, region)
        response = cloudformation.describe_stacks(StackName=stack)
    except NoRegionError as error:
        raise ConfigurationError(
            f"no AWS region to find stack {stack!r} in: pass --region, set AWS_DEFAULT_REGION, "
            "or give the profile a region"
        ) from error
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message") or str(error)
        raise ConfigurationError(f"cannot read stack {stack!r}: {message}") from error
    except BotoCoreError as error:
        raise ConfigurationError(f"cannot read stack {stack!r}: {error}") from error
    for stack_description in response.get("Stacks", []):
        for output in stack_description.get("Outputs", []):
            if output.get("OutputKey") == STACK_URL_OUTPUT:
                return str(output["OutputValue"])
    raise ConfigurationError(f"stack {stack!r} has no {STACK_URL_OUTPUT} output; is it the clickstream stack?")


# Output


def report_error(error: ClickstreamError) -> None:
    print(f"error: {error}", file=sys.stderr)
    for problem in error.field_errors:
        print(f"  {problem.get('field', '?')}: {problem.get('message', '')}", file=sys.stderr)


def _write_lines(args: argparse.Namespace, lines: Iterable[str], *, total: int | None, unit: str) -> None:
    """``lines`` to ``--out`` (or stdout), with a progress bar on stderr when it is a terminal."""
    written = 0
    with _output(args.out) as out:
        progress = tqdm(
            total=total,
            unit=unit,
            desc=args.batch_id,
            file=sys.stderr,
            disable=not _is_terminal(sys.stderr) or _is_terminal(out),
        )
        with progress:
            for line in lines:
                out.write(line)
                written += 1
                progress.update()
    if args.out and args.out != "-":
        print(f"{written} {unit}s written to {args.out}", file=sys.stderr)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _print_json_lines(values: Iterable[Any]) -> None:
    for value in values:
        sys.stdout.write(_json_line(value))


def _json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) + "\n"


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file that appears at ``path`` only once everything was written to it."""
    if not path or path == "-":
        yield sys.stdout
        return
    target = Path(path)
    try:
        descriptor, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:  # name the file asked for, not the temporary one
        raise OSError(error.errno, error.strerror, path) from error
    partial = Path(partial_name)
    try:
        with open(descriptor, "w", encoding="utf-8") as out:
            yield out
        partial.chmod(0o666 & ~_umask())  # mkstemp makes it private; give it the usual permissions
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _released_session_count(client: Client, batch_id: str) -> int | None:
    """How many sessions a released batch has (the progress bar's total); ``None`` while collecting."""
    try:
        batch = client.get_batch(batch_id)
    except NotFound:
        return None  # an API without GET /batch; paging itself says whether the batch exists
    count = batch.get("session_count")
    return count if batch.get("status") == "released" and isinstance(count, int) else None


def _write_utf8() -> None:
    # JSON Lines are UTF-8 whatever the terminal's locale.
    if isinstance(sys.stdout, io.TextIOWrapper) and (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
        sys.stdout.reconfigure(encoding="utf-8")


def _is_terminal(stream: TextIO) -> bool:
    return stream.isatty()


def _seconds(minimum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is out of range (>= {minimum:g})")
        return value

    return parse


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({bounds})")
        return value

    return parse
