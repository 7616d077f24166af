"""A durable job queue in the database: jobs table, claiming with leases, workers, handlers.

Work that must survive a restart and may take seconds (reading an uploaded photo) is written as
a `jobs` row in the same transaction as what asked for it, and a worker process
(`receipts jobs`, or a thread of `receipts demo`) runs it. See `server/jobs/queue.py` for the
states and the lease rules, `server/jobs/worker.py` for the loop and the handler contract.
"""
