"""monitor: watches news feeds and tells people, fast and once, when what they watch is published."""

__version__ = "0.1.0"
USER_AGENT = f"monitor/{__version__} (+https://github.com/monitor-feeds/monitor)"
