"""The Discord commands, one cog per subject; each turns an interaction into a Service call."""
