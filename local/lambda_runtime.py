"""Runs the real Lambda handlers in-process: loads function code and the layer as Lambda does."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, LifoQueue
from types import ModuleType
from typing import Any

from local.template import layer_paths, load_template

LambdaHandler = Callable[[dict[str, Any], Any], Any]
_module_counter = itertools.count()

# The function whose code runs here (each Lambda function has its own role; locally all share a process):
# what local/least_privilege.py checks a call against. None outside every function.
running_function: ContextVar[str | None] = ContextVar("running_function", default=None)


@contextmanager
def running_as(function_id: str) -> Iterator[None]:
    token = running_function.set(function_id)
    try:
        yield
    finally:
        running_function.reset(token)


def put_layers_on_path() -> None:
    """Lambda extracts layers to /opt/python; locally the layer source folders play that part."""
    for path in layer_paths(load_template()):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def load_function_module(code_uri: Path, handler: str) -> ModuleType:
    """Import the module of `handler` ("module.attribute") from `code_uri` afresh: one Lambda instance."""
    put_layers_on_path()
    module_name = handler.rsplit(".", 1)[0]
    unique_name = f"_lambda_{code_uri.name}_{module_name}_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(unique_name, code_uri / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {code_uri / module_name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique_name] = module
    spec.loader.exec_module(module)
    # Functions loaded in this process may serve requests from many threads at once (the local server,
    # concurrency tests), so their resolvers keep the current request per thread.
    from local.threads import resolve_per_thread

    if (app := getattr(module, "app", None)) is not None:
        resolve_per_thread(app)
    return module


def load_handler(code_uri: Path, handler: str) -> LambdaHandler:
    function: LambdaHandler = getattr(load_function_module(code_uri, handler), handler.rsplit(".", 1)[1])
    return function


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline_ms: int = field(default_factory=lambda: int(time.time() * 1000) + 29_000)

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


class FunctionInstances:
    """A pool of instances of one function. Each serves one request at a time, as a Lambda instance does
    (a Powertools resolver keeps per-request state, such as the matched route, on the app object)."""

    def __init__(self, function_id: str, code_uri: Path, handler: str, max_instances: int = 32) -> None:
        self.function_id = function_id
        self._code_uri = code_uri
        self._handler = handler
        self._idle: LifoQueue[LambdaHandler] = LifoQueue()
        self._created = 0
        self._max = max_instances
        self._lock = threading.Lock()

    def invoke(self, event: Any) -> Any:
        instance = self._acquire()
        try:
            with running_as(self.function_id):
                return instance(event, LambdaContext(function_name=self.function_id))
        finally:
            self._idle.put(instance)

    def _acquire(self) -> LambdaHandler:
        try:
            return self._idle.get_nowait()
        except Empty:
            pass
        with self._lock:
            create = self._created < self._max
            if create:
                self._created += 1
        if create:
            return load_handler(self._code_uri, self._handler)
        return self._idle.get()
