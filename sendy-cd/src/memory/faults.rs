//! The calls of the simulated account and the faults injected into them.

use std::fmt;

#[allow(unused_imports)] // for the doc links
use super::Account;
use crate::error::{Error, Result};

/// Every call a simulated backend answers, for [`Account::inject`] and [`Account::calls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Source::latest`](crate::Source::latest).
    SourceLatest,
    /// [`Builder::start`](crate::Builder::start).
    BuildStart,
    /// [`Builder::status`](crate::Builder::status).
    BuildStatus,
    /// [`Builder::stop`](crate::Builder::stop).
    BuildStop,
    /// [`Stack::plan`](crate::Stack::plan).
    StackPlan,
    /// [`Stack::apply`](crate::Stack::apply).
    StackApply,
    /// [`Stack::status`](crate::Stack::status).
    StackStatus,
    /// [`Stack::outputs`](crate::Stack::outputs).
    StackOutputs,
    /// [`Deployer::deploy`](crate::Deployer::deploy).
    Deploy,
    /// [`Deployer::status`](crate::Deployer::status).
    RolloutStatus,
    /// [`Deployer::revisions`](crate::Deployer::revisions).
    Revisions,
    /// [`Deployer::rollback`](crate::Deployer::rollback).
    Rollback,
    /// [`DnsSwitch::weights`](crate::DnsSwitch::weights).
    DnsWeights,
    /// [`DnsSwitch::set_weights`](crate::DnsSwitch::set_weights).
    DnsSetWeights,
    /// [`DnsSwitch::change_status`](crate::DnsSwitch::change_status).
    DnsChangeStatus,
    /// [`Verifier::probe`](crate::Verifier::probe).
    Probe,
    /// [`MetricSource::fetch`](crate::analysis::MetricSource::fetch) of [`Account::metrics`](super::Account::metrics).
    MetricsFetch,
    /// [`AlarmSource::firing`](crate::analysis::AlarmSource::firing) of [`Account::alarms`](super::Account::alarms).
    AlarmsDescribe,
    /// [`ManagedDeployer::progress`](crate::ManagedDeployer::progress).
    ManagedProgress,
    /// [`ManagedDeployer::decide`](crate::ManagedDeployer::decide).
    HookDecide,
    /// [`ManagedDeployer::stop`](crate::ManagedDeployer::stop).
    DeploymentStop,
    /// [`ManagedDeployer::history`](crate::ManagedDeployer::history).
    RevisionHistory,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 22] = [
        Op::SourceLatest,
        Op::BuildStart,
        Op::BuildStatus,
        Op::BuildStop,
        Op::StackPlan,
        Op::StackApply,
        Op::StackStatus,
        Op::StackOutputs,
        Op::Deploy,
        Op::RolloutStatus,
        Op::Revisions,
        Op::Rollback,
        Op::DnsWeights,
        Op::DnsSetWeights,
        Op::DnsChangeStatus,
        Op::Probe,
        Op::MetricsFetch,
        Op::AlarmsDescribe,
        Op::ManagedProgress,
        Op::HookDecide,
        Op::DeploymentStop,
        Op::RevisionHistory,
    ];
}

impl Op {
    /// Whether the call changes something in the account (its answer can be lost after it took effect).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Op::BuildStart
                | Op::BuildStop
                | Op::StackPlan
                | Op::StackApply
                | Op::Deploy
                | Op::Rollback
                | Op::DnsSetWeights
                | Op::HookDecide
                | Op::DeploymentStop
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What an injected fault does to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The call fails with a non-retryable [`Error::Backend`].
    Fail,
    /// The call is throttled ([`Error::Throttled`]).
    Throttle,
    /// The call fails transiently ([`Error::Transient`]).
    Transient,
    /// The call never answers.
    Hang,
    /// The call takes effect, but its answer is lost on the way back: the caller gets a transient
    /// error (a timeout or a connection reset after the service accepted the request). For calls that
    /// change nothing this is the same as [`Fault::Transient`].
    LoseAnswer,
}

/// What [`Account::enter`] lets through: whether the answer of the call is to be lost.
pub(crate) struct Answer {
    pub(super) op: Op,
    pub(super) lose: bool,
}

impl Answer {
    /// The call's result as the caller receives it: a lost answer is a transient error, whatever
    /// the call did.
    pub(crate) fn deliver<T>(self, result: Result<T>) -> Result<T> {
        match result {
            Ok(_) if self.lose => {
                Err(Error::Transient(format!("injected lost answer of {}: the call took effect", self.op).into()))
            }
            other => other,
        }
    }
}

/// A fault, the call it hits, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    pub(super) op: Op,
    pub(super) fault: Fault,
    pub(super) skip: u32,
    pub(super) times: Option<u32>,
}

impl Injection {
    /// `fault` on every call of `op` from now on.
    pub fn new(op: Op, fault: Fault) -> Self {
        Injection { op, fault, skip: 0, times: None }
    }

    /// Lets the next `n` calls through first.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Hits only `n` calls (`Injection::new(op, Fault::Fail).times(3)` fails the first three calls).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}
