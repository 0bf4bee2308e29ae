//! Cross-crate integration tests of sendy-cd: see `tests/`.
