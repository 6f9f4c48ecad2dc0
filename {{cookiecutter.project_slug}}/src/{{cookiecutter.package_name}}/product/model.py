"""The product catalogue row."""

from __future__ import annotations

from typing import Annotated

import msgspec
from loom.core.model import ColumnField, TimestampedModel

# Constraints live in the type so the API rejects bad input with a 422 naming the field;
# SQLite would store an over-long SKU and PostgreSQL would fail it as a server error.
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=150)]
Category = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class Product(TimestampedModel):
    """A sellable item; ``stock`` reaching 0 is what triggers a restock email."""

    __tablename__ = "products"

    id: int = ColumnField(primary_key=True, autoincrement=True)
    sku: str = ColumnField(length=64, unique=True, index=True)
    name: str = ColumnField(length=150)
    category: str = ColumnField(length=120, index=True)
    price_cents: int = ColumnField()
    stock: int = ColumnField()
