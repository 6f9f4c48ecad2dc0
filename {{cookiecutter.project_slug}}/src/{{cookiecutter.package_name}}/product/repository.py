"""The products' repository: loom's SQLAlchemy one, read through the cache.

AutoCRUD serves a model with loom's default repository, which loom never caches; a
repository declared for the model and marked ``@cached`` replaces it everywhere (REST,
use cases, callbacks), so every read by id and every list page goes through the cache of
``config/cache.yaml`` and every write through loom invalidates it.
"""

from __future__ import annotations

from loom.core.cache import cached
from loom.core.repository import repository_for
from loom.core.repository.sqlalchemy.repository import RepositorySQLAlchemy

from {{ cookiecutter.package_name }}.product.model import Product


@cached
@repository_for(Product)
class ProductRepository(RepositorySQLAlchemy[Product, int]):
    """Nothing of its own: declaring it is what puts products in the cache."""
