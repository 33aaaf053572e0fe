"""The command line: `zbot run`, `draw`, `batch`, `stats`, `settings`, `backup`, `prune`, bans, docs."""
