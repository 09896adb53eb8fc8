"""The cloud-agnostic core: settings, errors, inputs, cache, sessions, the task service."""
