//! The simulated repository.

use async_trait::async_trait;

use super::{Account, Op};
use crate::error::{Error, Result};
use crate::model::{BranchName, Revision};
use crate::source::Source;

/// The account's git repository, as a [`Source`]. Push to it with [`Account::push`].
#[derive(Clone, Debug)]
pub struct MemorySource {
    account: Account,
}

impl MemorySource {
    pub(crate) fn new(account: Account) -> Self {
        MemorySource { account }
    }
}

#[async_trait]
impl Source for MemorySource {
    async fn latest(&self, branch: &BranchName) -> Result<Revision> {
        self.account.enter(Op::SourceLatest).await?;
        let s = self.account.lock();
        s.branches
            .get(branch)
            .and_then(|commits| commits.last().cloned())
            .ok_or_else(|| Error::NotFound { kind: "branch", id: branch.to_string().into() })
    }
}
