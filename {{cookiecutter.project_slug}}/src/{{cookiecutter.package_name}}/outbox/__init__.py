"""Transactional outbox: a dispatch becomes a row of the use case's own transaction.

loom 9.0.0 publishes a dispatch after the commit, so a broker that is down at that
moment loses the job while the write stays (``500 post_commit_failure``). Here the job's
broker message is written to the ``outbox`` table in the same transaction as the use
case's writes, published right after the commit, and published again by a relay until
the broker has it. Its own folder, beside the domain folders, because it belongs to no
domain: every use case that dispatches goes through it. Celery mode only; the
in-process job runtime has no broker to lose a job to.
"""
