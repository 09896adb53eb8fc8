"""Model packs: a manifest plus the files it lists, each with sha256 and size."""
