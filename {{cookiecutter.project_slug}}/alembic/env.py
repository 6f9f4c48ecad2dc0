"""Alembic against loom's own compiled metadata.

``load_application`` discovers and compiles the models exactly as the API does, so
autogenerate compares the database with what the service would create, and
``alembic check`` fails on any drift. The URL comes from the same config (DATABASE_URL).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from loom.core.locator import load_application
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.package_name }}.runtime import config_dir

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name)

application = load_application(str(config_dir()))


def migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=application.metadata)
    with context.begin_transaction():
        context.run_migrations()


async def migrate_online() -> None:
    engine = create_async_engine(application.database.url)
    async with engine.connect() as connection:
        await connection.run_sync(migrate)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=application.database.url, target_metadata=application.metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(migrate_online())
