"""The ``parse`` task: pages to Markdown and a MinerU-style content list."""
