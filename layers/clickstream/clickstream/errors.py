"""Domain errors. The HTTP layer maps each to one status code in one place (`clickstream.api`)."""

from __future__ import annotations


class ClickstreamError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionNotFound(ClickstreamError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session with id={session_id} not found")
        self.session_id = session_id


class BatchNotFound(ClickstreamError):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"Batch with id={batch_id} not found")
        self.batch_id = batch_id


class ExperimentNotFound(ClickstreamError):
    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"No exported batch has the experiment with id={experiment_id}")
        self.experiment_id = experiment_id


class ReportNotFound(ClickstreamError):
    def __init__(self, batch_id: str) -> None:
        super().__init__(f"Batch with id={batch_id} has no report: its dataset is not exported yet")
        self.batch_id = batch_id


class ErasureNotFound(ClickstreamError):
    def __init__(self, erasure_id: str) -> None:
        super().__init__(f"Erasure with id={erasure_id} not found")
        self.erasure_id = erasure_id


class UserBeingErased(ClickstreamError):
    """A registration for a user an erasure is running for (contract 17.3): refused rather than stored beside
    an erasure that may not find it. Retrying once the erasure is done is fine (erasure is not a ban)."""

    def __init__(self) -> None:
        super().__init__("An erasure of this user is running; retry after it is done")


class TaskNotFound(ClickstreamError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"No improvement task for session with id={session_id}")
        self.session_id = session_id


class TaskCompletedOtherwise(ClickstreamError):
    """A completion that contradicts the task: reported with the other status, or for a task the session has
    been scheduled again since. Retrying does not help; the body says what the task is."""


class NoCollectingBatch(ClickstreamError):
    """Nothing to release. Step Functions matches this class name as the error type."""

    def __init__(self) -> None:
        super().__init__("There is no collecting batch")


class InvalidField(ClickstreamError):
    """A value that passed the schema but breaks a rule of the service (e.g. a timestamp outside the window)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class PayloadTooLarge(ClickstreamError):
    """A session or event that would not fit one DynamoDB item."""

    def __init__(self, field: str, size: int, limit: int) -> None:
        super().__init__(f"{field} is too large to store: {size} bytes serialized, at most {limit} bytes fit one item")
        self.field = field


class StorageUnavailable(ClickstreamError):
    """DynamoDB kept throttling or failing after the retries; the caller should retry later."""

    def __init__(self, retry_after_seconds: int = 1) -> None:
        super().__init__("The service is busy, retry later")
        self.retry_after_seconds = retry_after_seconds


class BatchExported(ClickstreamError):
    """A write for a session whose batch the export has fenced (contract 13.5): it would miss the dataset."""

    def __init__(self, batch_id: str) -> None:
        super().__init__("The session's batch is exported: it takes no more events")
        self.batch_id = batch_id


class ConflictError(ClickstreamError):
    """State that another call keeps changing; retrying the same call is safe."""


class TimestampOutsideWindow(InvalidField):
    """A client timestamp outside [now - past, now + future] (contract 4)."""


class ExportError(Exception):
    """An export cannot go on now. Step Functions matches the class name as the error type."""


class ExportNotReady(ExportError):
    """The batch is not released and settled yet, or another export took it over: try again later."""


class ExportRangeMissing(ExportError):
    def __init__(self, batch_id: str, index: int) -> None:
        super().__init__(f"range {index} of batch {batch_id} has no summary: it was not written")


class ExportSessionsMismatch(ExportError):
    """The ranges hold another number of sessions than the release counted: the dataset is not committed."""

    def __init__(self, batch_id: str, exported: int, released: int) -> None:
        super().__init__(f"batch {batch_id}: the export found {exported} sessions, the release counted {released}")


class ErasureDeadlinePassed(Exception):
    """A dataset the erasure must rewrite is still being exported as the erasure's deadline nears: the erasure
    stops as failed (lifting the registration guard) rather than be cut off by the state machine's timeout."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(
            f"batch {batch_id} is still exporting as the erasure's deadline (ERASURE_DEADLINE_HOURS) nears"
        )
