"""The deployment dashboard (`sendy_cd::dashboard` in Rust): `serve` it in the background, or render
one execution as a single HTML file with `report`."""

from sendy_cd._sendy_cd import DashboardServer, report, serve

__all__ = ["DashboardServer", "report", "serve"]
