"""Background jobs: a catalogue of set-based, idempotent job functions, the slots that
make each scheduled run happen once, and the runs recorded in ``sys_job``; rq on Redis
runs them when there is Redis, the same functions run in-process when there is not."""
