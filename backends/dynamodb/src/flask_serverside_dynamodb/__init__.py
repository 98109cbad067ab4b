"""Flask sessions in Amazon DynamoDB, for flask-serverside: ``SESSION_TYPE = "dynamodb"``."""

from __future__ import annotations

from .store import DynamoDBStore
from .store import default_client

__all__ = ["DynamoDBStore", "default_client"]
