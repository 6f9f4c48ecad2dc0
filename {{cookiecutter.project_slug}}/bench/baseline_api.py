"""The hand-written API baseline: plain FastAPI + SQLAlchemy on the service's own table.

What a developer would write without loom for the routes ``make bench`` measures: get by
id, a list page (rows plus total count, as the service answers), a create and a job
dispatch (a bare ``send_task`` to ``baseline_worker``). Same driver (asyncpg), same
table, same server; SQLAlchemy's default pool.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.baseline_worker import QUEUE, TASK, celery_app

engine = create_async_engine(os.environ["DATABASE_URL"])
app = FastAPI(title="bench baseline")

COLUMNS = "id, sku, name, category, price_cents, stock, created_at, updated_at"


class NewProduct(BaseModel):
    sku: str
    name: str
    category: str
    priceCents: int  # camelCase, as the service's JSON
    stock: int


def as_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "sku": row.sku,
        "name": row.name,
        "category": row.category,
        "priceCents": row.price_cents,
        "stock": row.stock,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


@app.get("/products/{product_id}")
async def get_product(product_id: int) -> dict[str, Any]:
    async with engine.connect() as connection:
        found = await connection.execute(
            text(f"SELECT {COLUMNS} FROM products WHERE id = :id"), {"id": product_id}
        )
        row = found.first()
    if row is None:
        raise HTTPException(status_code=404)
    return as_json(row)


@app.get("/products/")
async def list_products(page: int = 1, limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(f"SELECT {COLUMNS} FROM products ORDER BY id LIMIT :limit OFFSET :offset"),
            {"limit": limit, "offset": (page - 1) * limit},
        )
        items = [as_json(row) for row in rows]
        total = (await connection.execute(text("SELECT count(*) FROM products"))).scalar_one()
    return {
        "items": items,
        "totalCount": total,
        "page": page,
        "limit": limit,
        "hasNext": page * limit < total,
    }


@app.post("/products/", status_code=201)
async def create_product(product: NewProduct) -> dict[str, Any]:
    async with engine.begin() as connection:
        created = await connection.execute(
            text(
                "INSERT INTO products (sku, name, category, price_cents, stock) "
                f"VALUES (:sku, :name, :category, :price_cents, :stock) RETURNING {COLUMNS}"
            ),
            {
                "sku": product.sku,
                "name": product.name,
                "category": product.category,
                "price_cents": product.priceCents,
                "stock": product.stock,
            },
        )
        return as_json(created.one())


@app.post("/products/{product_id}/jobs/restock-email", status_code=202)
async def dispatch(product_id: int) -> dict[str, str]:
    sent = celery_app.send_task(TASK, args=[product_id], queue=QUEUE)
    return {"jobId": sent.id}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
