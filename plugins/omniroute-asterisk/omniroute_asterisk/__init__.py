"""Voice for omniroute: Asterisk carries the audio, omniroute drives it through ARI."""

__version__ = "0.1.0.dev0"
