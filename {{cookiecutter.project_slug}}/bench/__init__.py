"""`make bench`: the service measured against hand-written baselines on the same table.

Nobody picks a framework template over hand-written code if it makes the service slow, so
the numbers that say how much loom costs ship with the project, with the code they are
compared against: ``baseline_api`` (plain FastAPI + SQLAlchemy) and ``baseline_worker``
(a bare Celery task doing the job round trip's database work). ``run`` drives both.
"""
