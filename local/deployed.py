"""The template's functions run as Lambda runs them: each packaged (local/lambda_package.py), in its own
Python 3.13 process under the real runtime interface client (`python -m awslambdaric app.lambda_handler`,
what Lambda's managed python3.13 runtime runs), fed by a Runtime API stand-in (local/runtime_api.py),
with the environment Lambda sets, the template's variables, tracing on, and the X-Ray SDK's segments sent
to `xray_address`. An instance stays warm across invocations, as a Lambda container does; one that dies
is started again on the next invocation (a new cold start).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess  # nosec B404 - runs the packaged Lambda runtime, fixed arguments
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.apigateway import HttpResult, http_result
from local.dynamodb import LOCAL_REGION
from local.environment import LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, local_resource_names
from local.lambda_package import LambdaPackage
from local.runtime_api import InvocationError, RuntimeApi
from local.template import function_environment, load_template

_EXIT_ERROR = {"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited"}


@dataclass(frozen=True)
class Surroundings:
    """What the functions reach outside their code: the embedded AWS, the X-Ray daemon, scratch space."""

    aws_endpoint: str
    xray_address: str
    scratch: Path  # holds each instance's writable /tmp and a read-only HOME
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> local name (a bucket)
    extra: dict[str, str] = field(default_factory=dict)  # settings on top of the template's
    tracing: bool = True


def _setting(function_id: str, name: str) -> Any:
    template = load_template()
    own = template["Resources"][function_id]["Properties"]
    return own.get(name, template["Globals"]["Function"].get(name))


def lambda_variables(
    package: LambdaPackage, function_id: str, runtime_api: str, around: Surroundings
) -> dict[str, str]:
    """The environment Lambda gives the function (reserved variables, credentials), then the template's."""
    task_root, scratch = package.task_roots[function_id], around.scratch / function_id
    site = package.layer_dir / "python" / "lib" / "python3.13" / "site-packages"
    environment = {
        "PATH": f"{package.python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(package.runtime_dir),
        # The managed runtime's bootstrap puts the code, then the layer, before its own folder.
        "PYTHONPATH": os.pathsep.join(map(str, (task_root, site, package.layer_dir / "python", package.runtime_dir))),
        "_HANDLER": package.handlers[function_id],
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": function_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(_setting(function_id, "MemorySize")),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{secrets.token_hex(16)}",
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": "local",  # nosec B105 - the embedded AWS's local credentials
        "AWS_XRAY_DAEMON_ADDRESS": around.xray_address,
        "_AWS_XRAY_DAEMON_ADDRESS": around.xray_address.split(":")[0],
        "_AWS_XRAY_DAEMON_PORT": around.xray_address.split(":")[1],
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_ENDPOINT_URL": around.aws_endpoint,  # the one difference from AWS: the embedded moto
        "AWS_CONFIG_FILE": os.devnull,  # no shared config or credentials files in Lambda
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "HOME": str(around.scratch / "home"),  # read-only
        "TMPDIR": str(scratch / "tmp"),  # the only place the function may write
    }
    names = local_resource_names(around.aws_endpoint, **around.resources)
    environment.update(function_environment(load_template(), function_id, names))
    environment.update(around.extra)
    if not around.tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    return environment


def _without_privileges() -> list[str]:
    """As root, file modes do not stop writes: the child then runs with no capabilities (Lambda's code
    runs as an unprivileged user), so the read-only code folders are read-only to it too."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("running as root needs setpriv (util-linux) to drop privileges for the functions")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--"]


class LambdaInstance:
    """One warm instance of one function: a runtime process and its Runtime API."""

    def __init__(self, package: LambdaPackage, function_id: str, around: Surroundings) -> None:
        self.function_id = function_id
        self.api = RuntimeApi(function_id)
        self.timeout_s = float(_setting(function_id, "Timeout"))
        self.output: list[str] = []  # what the process printed (its CloudWatch log stream)
        self.cold_starts = 0
        self.started_at = 0.0  # time.monotonic() when the last instance was started
        self._package = package
        self._around = around
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        scratch = self._around.scratch / self.function_id / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        environment = lambda_variables(self._package, self.function_id, self.api.address, self._around)
        self.started_at = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 # nosec B603 - the packaged runtime, fixed arguments
            [*_without_privileges(), str(self._package.python), "-m", "awslambdaric", environment["_HANDLER"]],
            cwd=self._package.task_roots[self.function_id],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read_output, args=(process,), daemon=True).start()
        self.cold_starts += 1
        return process

    def _read_output(self, process: subprocess.Popen[str]) -> None:
        for line in process.stdout or ():
            self.output.append(line.rstrip("\n"))

    def start(self) -> None:
        """A new instance when there is none (or it died); it initializes (imports the handler) at once."""
        if self._process is None or self._process.poll() is not None:
            self.api.init_error = None
            self._process = self._start()

    def invoke(self, event: Any) -> Any:
        """The handler's result for `event`; InvocationError when it fails as Lambda reports a failure."""
        self.start()
        process = self._process
        if process is None:
            raise RuntimeError(f"{self.function_id}: no instance")
        invocation = self.api.submit(event, self.timeout_s)
        started = time.monotonic()
        while not invocation.done.wait(0.05):
            if process.poll() is not None:
                self.api.fail_all(self.api.init_error or _EXIT_ERROR)
            elif time.monotonic() - started > self.timeout_s:
                process.kill()  # Lambda ends an instance that runs past its timeout
                process.wait()
                self.api.fail_all({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"})
        if invocation.error is not None:
            raise InvocationError(invocation.error, invocation.error_headers)
        return json.loads(invocation.response or b"null")

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the running instance's process has used so far (Linux /proc)."""
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError(f"{self.function_id}: no running instance")
        fields = Path(f"/proc/{self._process.pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # as Lambda ends an idle instance: no shutdown phase without extensions
            self._process.wait()
        self.api.stop()


class DeployedFunctions:
    """Every function of the package, one warm instance each, started on first use."""

    def __init__(self, package: LambdaPackage, around: Surroundings) -> None:
        (around.scratch / "home").mkdir(parents=True, exist_ok=True)
        (around.scratch / "home").chmod(0o555)
        self._instances = {
            function_id: LambdaInstance(package, function_id, around) for function_id in package.handlers
        }

    def start(self) -> None:
        """Every instance started, so that they initialize side by side rather than one per first call."""
        for instance in self._instances.values():
            instance.start()

    @property
    def function_ids(self) -> set[str]:
        return set(self._instances)

    def instance(self, function_id: str) -> LambdaInstance:
        return self._instances[function_id]

    def invoke(self, function_id: str, event: Any) -> Any:
        return self._instances[function_id].invoke(event)

    def invoke_http(self, function_id: str, event: dict[str, Any]) -> HttpResult:
        return http_result(self.invoke(function_id, event))

    def output(self) -> list[str]:
        return [line for instance in self._instances.values() for line in instance.output]

    def stop(self) -> None:
        for instance in self._instances.values():
            instance.stop()
