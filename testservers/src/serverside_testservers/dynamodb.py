"""DynamoDB: moto's server mode, a DynamoDB API server on a free loopback port.

The server is moto's (PyPI ``moto[server]``, installed into the test virtualenv by the
workspace's lock), run by ``_moto_serve.py`` with this interpreter as its own process and
stopped by its PID. That launcher is ``moto_server`` with requests handled one at a time, so
that conditional writes are atomic as on DynamoDB (moto's threaded server checks a condition
and writes without a lock). It keeps its tables in memory: nothing survives
:meth:`~DynamoDBServer.stop`. It checks no signature, so any
credentials do; :data:`DUMMY_ENVIRONMENT` holds the ones the fixtures give boto3, so that no
test can reach, or be billed by, a real AWS account.

Readiness sends DynamoDB's ``ListTables`` over plain HTTP, so no AWS library is needed here.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import typing as t
from pathlib import Path

from ._process import ServerProcess
from ._process import missing

if t.TYPE_CHECKING:
    import collections.abc as c

#: The script the server process runs.
MOTO_LAUNCHER = Path(__file__).with_name("_moto_serve.py")

#: The region the fixtures configure.
REGION = "us-east-1"

#: Environment variables that point boto3's default session at nothing real: dummy
#: credentials, a region, and no shared config or credentials file.
DUMMY_ENVIRONMENT: c.Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}

#: Variables that would take boto3 elsewhere; the fixtures remove them.
UNSET_ENVIRONMENT = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE")


def dynamodb_request(
    host: str, port: int, operation: str, body: dict[str, t.Any], *, timeout: float = 5.0
) -> dict[str, t.Any]:
    """Send one DynamoDB JSON request (``ListTables``, ...) and return the decoded reply.

    The ``Authorization`` header only names the service and region, which is what routes the
    request to DynamoDB in moto; nothing is signed.

    :raises OSError: on connection errors.
    :raises ValueError: when the reply is not JSON.
    """
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(
            "POST",
            "/",
            body=json.dumps(body),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"DynamoDB_20120810.{operation}",
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/dynamodb/aws4_request,"
                    " SignedHeaders=host, Signature=0"
                ),
            },
        )
        reply = connection.getresponse().read()
    finally:
        connection.close()
    decoded: dict[str, t.Any] = json.loads(reply)
    return decoded


class DynamoDBServer(ServerProcess):
    """moto's server on a free loopback port; tables live in memory.

    :param extra_args: further command-line arguments of ``_moto_serve.py``.
    """

    kind = "dynamodb"

    def __init__(
        self,
        *,
        extra_args: c.Sequence[str] = (),
        port: int | None = None,
        directory: Path | None = None,
    ) -> None:
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
            missing("moto[server] is not installed", "run scripts/bootstrap")
        #: The interpreter that runs the server (this one, which has moto).
        self.python: str = sys.executable
        #: Extra command-line arguments given at construction.
        self.extra_args: list[str] = list(extra_args)
        super().__init__(port=port, directory=directory)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``endpoint_url`` for boto3."""
        return f"http://{self.host}:{self.port}"

    @property
    def client_options(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client("dynamodb", **options)`` (or ``resource``)
        that reach this server with dummy credentials."""
        return {
            "endpoint_url": self.url,
            "region_name": REGION,
            "aws_access_key_id": DUMMY_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
        }

    def argv(self) -> list[str]:
        return [
            self.python,
            str(MOTO_LAUNCHER),
            "--host", self.host,
            "--port", str(self.port),
            *self.extra_args,
        ]  # fmt: skip

    def probe(self) -> bool:
        try:
            return "TableNames" in self.request("ListTables", {})
        except ValueError:
            return False

    def request(self, operation: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """Send one DynamoDB request (see :func:`dynamodb_request`)."""
        return dynamodb_request(self.host, self.port, operation, body)

    def table_names(self) -> list[str]:
        """:returns: the names of the tables the server holds."""
        names: list[str] = self.request("ListTables", {})["TableNames"]
        return names
