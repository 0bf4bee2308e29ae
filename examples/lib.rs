//! Runnable examples of sendy-cd: see the `[[example]]` targets.
