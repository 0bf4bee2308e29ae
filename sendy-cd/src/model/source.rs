//! What a source yields: commits, branches, revisions.

use super::*;

string_newtype!(
    /// A full git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
    CommitId,
    ValueKind::CommitId,
    |s| {
        if s.len() != 40 && s.len() != 64 {
            return Err(format!("must be 40 or 64 hex digits, not {}", s.len()).into());
        }
        if !is_lower_hex(s) {
            return Err("must be lowercase hexadecimal".into());
        }
        Ok(())
    }
);

impl CommitId {
    /// The first seven digits, as `git log --oneline` shows them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

string_newtype!(
    /// A git branch name, following `git check-ref-format --branch`.
    BranchName,
    ValueKind::BranchName,
    |s| {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s == "@" {
            return Err("must not be \"@\"".into());
        }
        if s.len() > 255 {
            return Err("must be at most 255 bytes".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c)) {
            return Err(format!("must not contain {c:?}").into());
        }
        if s.contains("..") || s.contains("@{") || s.contains("//") {
            return Err("must not contain \"..\", \"@{\" or \"//\"".into());
        }
        if s.starts_with('/') || s.ends_with('/') || s.ends_with('.') || s.starts_with('-') {
            return Err("must not start with '/' or '-', nor end with '/' or '.'".into());
        }
        if s.split('/').any(|c| c.starts_with('.') || c.ends_with(".lock")) {
            return Err("no component may start with '.' or end with \".lock\"".into());
        }
        Ok(())
    }
);

impl Default for BranchName {
    fn default() -> Self {
        BranchName("main".to_owned())
    }
}

/// A commit on a branch: what a [`Source`](crate::Source) reports and a pipeline deploys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// The commit id.
    pub commit: CommitId,
    /// The branch the commit was read from.
    pub branch: BranchName,
    /// The commit message (may be empty).
    pub message: String,
    /// The author, as `Name <email>` or whatever the source reports.
    pub author: String,
    /// When the commit was made.
    pub time: jiff::Timestamp,
}

impl Revision {
    /// A revision with an empty message and author, made now.
    pub fn new(commit: CommitId, branch: BranchName) -> Self {
        Revision { commit, branch, message: String::new(), author: String::new(), time: jiff::Timestamp::now() }
    }

    /// The image tag a build of this revision is pushed with: the full commit id.
    pub fn image_tag(&self) -> &str {
        self.commit.as_str()
    }
}
