"""The ``docfn`` command."""
