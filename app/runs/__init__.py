"""The run machinery shared by every kind of run (pipeline runs now; workflow runs and
flows later): states and their history, attempts and leases, progress, logs, errors,
artifacts, cancellation, dispatch to the broker and the sweeper that recovers lost work.

A domain defines its run as a subclass of ``Run`` (joined-table inheritance) and a Celery
task name; everything else about the run's life is here.
"""
