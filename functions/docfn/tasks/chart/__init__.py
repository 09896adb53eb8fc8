"""The ``chart`` task: a chart (or any picture) to what it is, its caption and its data, with MinerU2.5's
"Image Analysis:" prompt."""
