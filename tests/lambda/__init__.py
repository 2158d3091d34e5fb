"""The Lambda tier: each function run as Lambda runs it (contract 13.2).

What runs: each function as `sam build` packages it (its CodeUri folder as /var/task; the layer built by
its own Makefile target, for this machine's platform, as /opt), both read-only, in a Python 3.13 process
started as the managed runtime starts it: `python -m awslambdaric app.lambda_handler`, from the task
folder, with PYTHONPATH ordered as the runtime orders sys.path (task, /opt/python, /var/runtime) and
nothing else importable (a bare 3.13 venv stands for /var/lang). local/lambda_package.py, local/deployed.py.

Why that is faithful: awslambdaric is the code Lambda's python3.13 runtime itself runs in /var/runtime
(the same bootstrap: load the handler in the init phase, long-poll the Runtime API, set _X_AMZN_TRACE_ID
from each invocation's Lambda-Runtime-Trace-Id, marshal the result or the error). What is not Lambda is
only what sits outside the process: the Runtime API (local/runtime_api.py, the four documented endpoints
with the headers Lambda sends), the X-Ray daemon (local/xray_daemon.py, a UDP socket that keeps the
datagrams the SDK sends) and AWS itself (the embedded moto, reached through AWS_ENDPOINT_URL). The process
gets Lambda's reserved variables (LAMBDA_TASK_ROOT, AWS_EXECUTION_ENV, AWS_LAMBDA_FUNCTION_*, _HANDLER,
AWS_XRAY_DAEMON_ADDRESS, AWS_XRAY_CONTEXT_MISSING, TZ, credentials, ...) and the template's Globals and
function variables, with tracing on, as deployed. It stays warm across invocations, one per function, as
a container does. As root the process runs without capabilities, so the read-only folders are read-only
to it (Lambda's code runs unprivileged); HOME is read-only, TMPDIR its scratch folder.

Known differences: x86_64 rather than arm64 (the same wheels' other build); the runtime's own boto3 is
not in /var/runtime (the layer's copy comes first on the path in Lambda too); no memory or CPU limit; the
X-Ray SDK's /tmp/.aws-xray marker goes to this machine's /tmp.
"""
