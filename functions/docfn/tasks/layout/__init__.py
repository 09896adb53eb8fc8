"""The ``layout`` task: typed page regions with scores, in reading order."""
