"""The Discord front end: a thin layer over the core (zbot.core.service)."""
