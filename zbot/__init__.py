"""zbot: a self-hosted Discord bot that draws images with Z-Image-Turbo."""

__version__ = "0.1.0"
