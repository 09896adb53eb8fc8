"""Layer 2: model packs as data. A manifest plus the files it lists (sha256 and size each), pack
references (which pack a task uses), the catalog of packs buildable offline, and the local store."""
