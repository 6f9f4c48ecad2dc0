"""The product catalogue row.

Each field's constraints are declared once, in its type, from the same numbers as its
column: the API refuses what the database could not store with a 422 naming the field,
instead of PostgreSQL failing the statement as a server error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from loom.core.model import BaseModel, ColumnField, TimestampedModel

SKU_LENGTH = 64
NAME_LENGTH = 150
CATEGORY_LENGTH = 120
# PostgreSQL's ``integer``: Python ints are unbounded, the column is not.
INT4_MAX = 2**31 - 1
# PostgreSQL text cannot hold NUL; SQLite would store it and the two would disagree.
NO_NUL = r"^[^\x00]*$"

Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=SKU_LENGTH, pattern=NO_NUL)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_LENGTH, pattern=NO_NUL)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=CATEGORY_LENGTH, pattern=NO_NUL)]
NonNegativeInt4 = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]


class Product(TimestampedModel):
    """A sellable item; ``stock`` reaching 0 is what triggers a restock email."""

    __tablename__ = "products"

    id: int = ColumnField(primary_key=True, autoincrement=True)
    sku: Sku = ColumnField(length=SKU_LENGTH, unique=True, index=True)
    name: Name = ColumnField(length=NAME_LENGTH)
    category: Category = ColumnField(length=CATEGORY_LENGTH, index=True)
    price_cents: NonNegativeInt4 = ColumnField()
    stock: NonNegativeInt4 = ColumnField()


KEY_LENGTH = 36  # a UUID
EMAIL_LENGTH = 254


class RestockNotification(BaseModel):
    """A restock email that was sent, keyed by the dispatch that asked for it.

    Delivery is at least once: a job can arrive twice (a worker crash, an outbox relay
    crash between publish and mark). The job looks its key up first, so the second
    arrival sends nothing.
    """

    __tablename__ = "restock_notifications"

    key: str = ColumnField(primary_key=True, length=KEY_LENGTH)
    product_id: int = ColumnField(index=True)
    recipient_email: str = ColumnField(length=EMAIL_LENGTH)
    sent_at: datetime = ColumnField()
