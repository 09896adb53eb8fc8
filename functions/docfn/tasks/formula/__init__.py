"""The ``formula`` task: a formula image to LaTeX with MinerU2.5's "Formula Recognition:" prompt."""
