"""Task functions: one folder (or module) per task, each a :class:`~docfn.tasks.base.Task`."""
