"""The ``dynamodb`` store: one item per session in an Amazon DynamoDB table, through boto3.

Configuration (``SESSION_TYPE = "dynamodb"``), Flask-Session 0.8's keys::

    SESSION_DYNAMODB = boto3.resource("dynamodb", ...)   # or boto3.client("dynamodb", ...)
    SESSION_DYNAMODB_TABLE = "Sessions"                  # the default
    SESSION_DYNAMODB_TABLE_EXISTS = False                # create the table when missing

Without ``SESSION_DYNAMODB`` the store builds a client of boto3's default session (credentials,
region and endpoint from the environment and the AWS config files), with connect and read
timeouts (``SESSION_DYNAMODB_CLIENT_TIMEOUT``) and boto3's standard retries, and logs the region and
endpoint it took, once, at start-up. Start-up never connects: unless
``SESSION_DYNAMODB_TABLE_EXISTS``, the first operation creates the table when it is missing.

A session is an item in the shape Flask-Session 0.8 writes, plus two attributes::

    {"id": {"S": "session:<sid>"},        # SESSION_KEY_PREFIX + sid: the partition key
     "val": {"B": b"..."},                # the session's bytes, unchanged
     "expiration": {"N": "1767225600"},   # Unix time, whole seconds: the table's TTL attribute
     "version": {"N": "1234567"},         # random 63-bit number, new on every write
     "user": {"S": "alice"}}              # only while the session has a user

so a table Flask-Session filled keeps working. Reads are strongly consistent and check
``expiration`` themselves (DynamoDB's TTL deletes expired items only eventually). Every write is
an ``UpdateItem`` (the permissions Flask-Session asks for); a conditional save is one with a
``ConditionExpression`` on the version it loaded; a refresh sets ``expiration`` alone. Purge,
count, list and "log out everywhere" scan the table (see the README for what that costs).
"""

from __future__ import annotations

import collections.abc as c
import logging
import math
import re
import secrets
import time
import typing as t

import boto3  # type: ignore[import-untyped]
from boto3.dynamodb.types import TypeDeserializer  # type: ignore[import-untyped]
from boto3.dynamodb.types import TypeSerializer
from botocore.client import BaseClient  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionClosedError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ReadTimeoutError

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.dynamodb")

Item: t.TypeAlias = dict[str, t.Any]

#: Flask-Session's table name.
DEFAULT_TABLE = "Sessions"
#: Connect and read timeout, in seconds, of the clients the store builds.
DEFAULT_TIMEOUT = 2.0
#: A read-only request rewrites the expiry only when it was last set longer ago than this.
DEFAULT_REFRESH_INTERVAL = 600
#: Error codes of a table still overloaded after boto3's retries: an outage, not a failure.
THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)

ERRORS = ClientErrors(
    "DynamoDB",
    unavailable=(BotoConnectionError, ReadTimeoutError, ConnectionClosedError),
    failed=(ClientError, BotoCoreError),
)

_ATTRIBUTES = {"id": "id", "val": "val", "exp": "expiration", "ver": "version", "user": "user"}
_LIVE = "attribute_exists(#id) AND #exp > :now"
_VALUE_PARAMS = ("Key", "ExpressionAttributeValues", "ExclusiveStartKey")
_ITEM_RESULTS = ("Item", "Attributes", "LastEvaluatedKey")
_TO_PYTHON = TypeDeserializer()
_TO_DYNAMODB = TypeSerializer()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _names(*expressions: str) -> dict[str, str]:
    """``ExpressionAttributeNames`` for the ``#name`` placeholders ``expressions`` use."""
    used = re.findall(r"#(\w+)", " ".join(expressions))
    return {f"#{name}": _ATTRIBUTES[name] for name in used}


def _number(value: float) -> dict[str, str]:
    return {"N": str(value)}


class DynamoDBStore:
    """Sessions in a DynamoDB table.

    :param client: a boto3 DynamoDB client, or a resource (``boto3.resource("dynamodb")``,
        whose client converts Python values itself: the store adapts).
    :param table: the table's name; its partition key is the string ``id``.
    :param key_prefix: prepended to every session id.
    :param create_table: have the first operation create the table if it is missing (and
        turn its TTL on); building the store never connects.
    :param refresh_interval: a read-only request rewrites the expiry only when it was set
        longer ago than this (at most a tenth of the lifetime); ``0`` rewrites it on every
        read, in the same round trip.
    :param owns_client: close the client in :meth:`close` (a client the store built).
    :param clock: the current Unix time; tests pass a fake one.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.PURGE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    config_keys: t.ClassVar[tuple[str, ...]] = (
        "SESSION_DYNAMODB",
        "SESSION_DYNAMODB_TABLE",
        "SESSION_DYNAMODB_TABLE_NAME",
        "SESSION_DYNAMODB_TABLE_EXISTS",
        "SESSION_DYNAMODB_CLIENT_TIMEOUT",
        "SESSION_DYNAMODB_REFRESH_INTERVAL",
    )

    def __init__(
        self,
        client: t.Any,
        *,
        table: str = DEFAULT_TABLE,
        key_prefix: str = "session:",
        create_table: bool = True,
        refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
        owns_client: bool = False,
        clock: c.Callable[[], float] = time.time,
    ) -> None:
        resource_client = getattr(getattr(client, "meta", None), "client", None)
        self._python_values = isinstance(resource_client, BaseClient)
        self._handle = ClientHandle(resource_client or client, owned=owns_client)
        #: The table's name.
        self.table = table
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        #: Seconds within which a read-only request does not rewrite the expiry.
        self.refresh_interval = refresh_interval
        self._clock = clock
        #: Whether the first operation creates the table (start-up never connects).
        self._table_pending = create_table

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> DynamoDBStore:
        """Build the store from ``SESSION_DYNAMODB`` (a boto3 resource or client; unset: a
        client of boto3's default session), ``SESSION_DYNAMODB_TABLE`` (Flask-Session's
        documentation calls it ``SESSION_DYNAMODB_TABLE_NAME``: both are read),
        ``SESSION_DYNAMODB_TABLE_EXISTS``, ``SESSION_DYNAMODB_CLIENT_TIMEOUT`` and
        ``SESSION_DYNAMODB_REFRESH_INTERVAL``.

        :raises ConfigurationError: for a value of the wrong kind, or no region to use.
        """
        config = settings.config
        table = settings.text("SESSION_DYNAMODB_TABLE", DEFAULT_TABLE)
        if config.get("SESSION_DYNAMODB_TABLE_NAME") is not None:
            if config.get("SESSION_DYNAMODB_TABLE") not in (
                None,
                config["SESSION_DYNAMODB_TABLE_NAME"],
            ):
                raise ConfigurationError(
                    "SESSION_DYNAMODB_TABLE and SESSION_DYNAMODB_TABLE_NAME name different"
                    " tables: keep SESSION_DYNAMODB_TABLE."
                )
            table = settings.text("SESSION_DYNAMODB_TABLE_NAME")
        exists = settings.flag("SESSION_DYNAMODB_TABLE_EXISTS", False)
        interval = settings.integer(
            "SESSION_DYNAMODB_REFRESH_INTERVAL", DEFAULT_REFRESH_INTERVAL, minimum=0
        )
        timeout = settings.seconds("SESSION_DYNAMODB_CLIENT_TIMEOUT", DEFAULT_TIMEOUT)
        value = config.get("SESSION_DYNAMODB")
        given = getattr(getattr(value, "meta", None), "client", value)  # a resource's client
        if value is not None and not (
            isinstance(given, BaseClient) and given.meta.service_model.service_name == "dynamodb"
        ):
            raise ConfigurationError(
                "SESSION_DYNAMODB must be boto3.resource('dynamodb', ...) or boto3.client("
                f"'dynamodb', ...), or unset for boto3's default session; not {value!r}."
            )
        owned = value is None
        return cls(
            default_client(timeout) if owned else value,
            table=table,
            key_prefix=settings.key_prefix,
            create_table=not exists,
            refresh_interval=interval,
            owns_client=owned,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, doing: str, operation: str, **params: t.Any) -> Item | None:
        """Run one operation on the table with values in DynamoDB's form (and the attribute
        names its expressions use), translating its errors; ``None`` when the operation's
        condition failed."""
        expressions = [value for name, value in params.items() if name.endswith("Expression")]
        if expressions:
            params["ExpressionAttributeNames"] = _names(*expressions)
        if self._python_values:  # a resource's client takes and gives Python values
            for name in _VALUE_PARAMS:
                if name in params:
                    params[name] = {k: _TO_PYTHON.deserialize(v) for k, v in params[name].items()}
        with ERRORS(doing):
            if self._table_pending:
                self._create_late_table()
            try:
                call = getattr(self._handle.client, operation)
                response: Item = call(TableName=self.table, **params)
            except ClientError as exc:
                code = _code(exc)
                if code == "ConditionalCheckFailedException":
                    return None
                if code in THROTTLED:
                    raise StoreUnavailable(f"DynamoDB is throttling, could not {doing}") from exc
                if code == "ResourceNotFoundException":
                    raise StoreError(
                        f"the DynamoDB table {self.table!r} does not exist: create it, or set"
                        " SESSION_DYNAMODB_TABLE_EXISTS = False"
                    ) from exc
                raise
        if self._python_values:
            for name in _ITEM_RESULTS:
                if name in response:
                    response[name] = _dynamodb_item(response[name])
            if "Items" in response:
                response["Items"] = [_dynamodb_item(item) for item in response["Items"]]
        return response

    def _key(self, sid: str) -> Item:
        return {"id": {"S": self.key_prefix + sid}}

    def _record(self, item: Item | None, now: float) -> Record | None:
        """The record in ``item`` if it is live at ``now``; an item without data or expiry
        (not a session) is none."""
        if item is None or "B" not in item.get("val", {}) or "N" not in item.get("expiration", {}):
            return None
        if float(item["expiration"]["N"]) <= now:
            return None
        version = item.get("version")
        return Record(bytes(item["val"]["B"]), None if version is None else int(version["N"]))

    def _get(self, doing: str, sid: str) -> Item | None:
        response = self._call(
            doing,
            "get_item",
            Key=self._key(sid),
            ConsistentRead=True,
            ProjectionExpression="#val, #exp, #ver",
        )
        return (response or {}).get("Item")

    def _write(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        user_id: str | None,
        condition: str = "",
        **values: t.Any,
    ) -> bool:
        """Write a whole session with one ``UpdateItem`` (an upsert), under ``condition``;
        ``False`` when the condition failed."""
        update = "SET #val = :val, #exp = :exp, #ver = :ver"
        values.update(
            {
                ":val": {"B": data},
                ":exp": _number(math.ceil(self._clock() + ttl)),
                ":ver": _number(secrets.randbits(63)),
            }
        )
        if user_id is None:
            update += " REMOVE #user"
        else:
            update += ", #user = :user"
            values[":user"] = {"S": user_id}
        params: Item = {"UpdateExpression": update, "ExpressionAttributeValues": values}
        if condition:
            params["ConditionExpression"] = condition
        return self._call("save a session", "update_item", Key=self._key(sid), **params) is not None

    def _refresh(self, sid: str, ttl: int, **params: t.Any) -> Item | None:
        """``UpdateItem`` of ``expiration`` alone, on a live item; ``None`` if there is none."""
        now = self._clock()
        return self._call(
            "refresh a session",
            "update_item",
            Key=self._key(sid),
            UpdateExpression="SET #exp = :exp",
            ConditionExpression=_LIVE,
            ExpressionAttributeValues={":exp": _number(math.ceil(now + ttl)), ":now": _number(now)},
            **params,
        )

    def _scan(self, doing: str, condition: str, values: Item, **params: t.Any) -> c.Iterator[Item]:
        """Scan for the items of this prefix that meet ``condition``, page by page (no error
        context is held across a ``yield``)."""
        if self.key_prefix:
            condition = f"begins_with(#id, :prefix) AND {condition}"
            values = {**values, ":prefix": {"S": self.key_prefix}}
        params.update(FilterExpression=condition, ExpressionAttributeValues=values)
        while True:
            page = t.cast(Item, self._call(doing, "scan", ConsistentRead=True, **params))
            yield page
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _sids(self, doing: str, condition: str, **values: t.Any) -> c.Iterator[str]:
        start = len(self.key_prefix)
        values[":now"] = _number(self._clock())
        for page in self._scan(doing, condition, values, ProjectionExpression="#id"):
            for item in page.get("Items", ()):
                yield item["id"]["S"][start:]

    def create_table(self) -> None:
        """Create the table if it is missing (partition key ``id``, on-demand capacity, as
        Flask-Session does) and turn its TTL on for ``expiration``; the first operation of a
        store built with ``create_table`` calls it.

        :raises StoreError: when DynamoDB refuses (no permission, another key schema).
        """
        client = self._handle.client
        with ERRORS("create the session table"):
            try:
                client.create_table(
                    TableName=self.table,
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:
                if _code(exc) != "ResourceInUseException":  # it exists
                    raise
            waiter = client.get_waiter("table_exists")
            waiter.wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            try:
                client.update_time_to_live(
                    TableName=self.table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
                )
            except ClientError as exc:
                if "already enabled" not in str(exc):  # harmless: reads check the expiry
                    log.warning("could not turn on the TTL of table %r: %s", self.table, exc)
        self._table_pending = False

    def _create_late_table(self) -> None:
        try:
            self.create_table()
        except StoreUnavailable:
            raise  # still down: so is the operation; the next one tries again
        except StoreError as exc:  # no permission, another key schema: go on without
            self._table_pending = False
            log.error(
                "creating the session table %r failed (%s): create it yourself and set"
                " SESSION_DYNAMODB_TABLE_EXISTS = True",
                self.table,
                exc,
            )

    # -- the protocol -----------------------------------------------------------------------

    def load(self, sid: str) -> Record | None:
        return self._record(self._get("load a session", sid), self._clock())

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        self._write(sid, data, ttl, user_id)

    def delete(self, sid: str) -> None:
        self._call("delete a session", "delete_item", Key=self._key(sid))

    def touch(self, sid: str, ttl: int) -> bool:
        return self._refresh(sid, ttl) is not None

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """One round trip: an ``UpdateItem`` that refreshes a live item and returns it, or
        (with a refresh interval) a ``GetItem``, and a refresh only when one is due."""
        if self.refresh_interval == 0:
            response = self._refresh(sid, ttl, ReturnValues="ALL_NEW")
            return None if response is None else self._record(response["Attributes"], 0)
        now = self._clock()
        item = self._get("load a session", sid)
        record = self._record(item, now)
        if record is None or item is None:
            return None
        due = float(item["expiration"]["N"]) < now + ttl - min(self.refresh_interval, ttl // 10)
        if due and not self.touch(sid, ttl):
            return None  # deleted or expired since it was read
        return record

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        values: Item = {":now": _number(self._clock())}
        if expected is None:
            condition = "attribute_not_exists(#id) OR #exp <= :now"
        elif expected.version is None:  # written by Flask-Session: the first write versions it
            condition = f"{_LIVE} AND attribute_not_exists(#ver)"
        else:
            condition = f"{_LIVE} AND #ver = :expected"
            values[":expected"] = _number(t.cast(int, expected.version))
        return self._write(sid, data, ttl, user_id, condition, **values)

    def purge_expired(self) -> int:
        """Scan for expired items of this prefix and delete each one still expired (one
        refreshed meanwhile stays)."""
        removed = 0
        expired = "#exp <= :now"
        now = {":now": _number(self._clock())}
        for page in self._scan("purge sessions", expired, now, ProjectionExpression="#id"):
            for item in page.get("Items", ()):
                removed += (
                    self._call(
                        "purge a session",
                        "delete_item",
                        Key={"id": item["id"]},
                        ConditionExpression=expired,
                        ExpressionAttributeValues=now,
                    )
                    is not None
                )
        return removed

    def count(self) -> int:
        pages = self._scan(
            "count sessions", "#exp > :now", {":now": _number(self._clock())}, Select="COUNT"
        )
        return sum(int(page.get("Count", 0)) for page in pages)

    def iter_sids(self) -> c.Iterator[str]:
        return self._sids("list sessions", "#exp > :now")

    def user_sids(self, user_id: str) -> list[str]:
        condition = "#user = :user AND #exp > :now"
        return list(self._sids("find a user's sessions", condition, **{":user": {"S": user_id}}))

    def close(self) -> None:
        """Close the client when the store built it; a client passed in stays open."""
        self._handle.close()


def _dynamodb_item(item: Item) -> Item:
    return {name: _TO_DYNAMODB.serialize(value) for name, value in item.items()}


def default_client(timeout: float | None = DEFAULT_TIMEOUT) -> t.Any:
    """A DynamoDB client of boto3's default session, with connect and read timeouts and
    standard retries (3 attempts); logs the region and endpoint it uses.

    :raises ConfigurationError: when the default session has no region.
    """
    session = boto3.session.Session()
    if session.region_name is None:
        raise ConfigurationError(
            "SESSION_DYNAMODB is not set and boto3's default session has no region: set"
            " AWS_DEFAULT_REGION (and AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local), or set"
            " SESSION_DYNAMODB = boto3.resource('dynamodb', region_name=...)."
        )
    retries = {"mode": "standard", "total_max_attempts": 3}
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries=retries)
    client = session.client("dynamodb", config=config)
    log.info(
        "SESSION_DYNAMODB is not set: using boto3's default session, region %s, endpoint %s",
        client.meta.region_name,
        client.meta.endpoint_url,
    )
    return client
