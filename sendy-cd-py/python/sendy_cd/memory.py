"""The simulated AWS account (`sendy_cd::memory` in Rust)."""

from sendy_cd._sendy_cd import Account, SimConfig

__all__ = ["Account", "SimConfig"]
