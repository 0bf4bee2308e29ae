//! `mockall` mocks of every trait (feature `mock`), for asserting how code calls a backend.
//!
//! Prefer the [`memory`](crate::memory) account to fake a whole AWS account; use these mocks to
//! check the exact calls a piece of code makes.
//!
//! ```
//! use sendy_cd::{BranchName, CommitId, Revision, Source, mock::MockSource};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut source = MockSource::new();
//! let commit = CommitId::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
//! let revision = Revision::new(commit, BranchName::default());
//! let answer = revision.clone();
//! source.expect_latest().times(1).returning(move |_| Ok(answer.clone()));
//! assert_eq!(source.latest(&BranchName::default()).await.unwrap(), revision);
//! # }
//! ```

pub use crate::analysis::MockMetricSource;
pub use crate::analysis::alarms::MockAlarmSource;
pub use crate::builder::MockBuilder;
pub use crate::deployer::{MockDeployer, MockManagedDeployer};
pub use crate::dns::MockDnsSwitch;
pub use crate::source::MockSource;
pub use crate::stack::MockStack;
pub use crate::verify::MockVerifier;
