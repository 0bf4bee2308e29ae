//! The conformance suite against the simulated account's backends, on a paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sendy_cd::conformance::{
    self, BuilderHarness, DeployerHarness, DnsHarness, Patience, SourceHarness, StackHarness, VerifierHarness,
};
use sendy_cd::memory::Account;
use sendy_cd::{
    BranchName, Builder, CommitId, Deployer, DnsSwitch, ImageRef, Result, Revision, Rollout, ServiceUrl, SetIdentifier,
    Source, Stack, StackChange, StackName, StackParameters, Verifier,
};

struct Memory {
    account: Account,
    changes: AtomicU32,
}

fn harness() -> Memory {
    let account = Account::new();
    account.create_environment("blue").unwrap();
    account.create_environment("green").unwrap();
    Memory { account, changes: AtomicU32::new(0) }
}

#[async_trait]
impl SourceHarness for Memory {
    fn source(&self) -> Arc<dyn Source> {
        Arc::new(self.account.source())
    }
    async fn push(&self, branch: &BranchName, message: &str) -> Result<CommitId> {
        Ok(self.account.push(branch.as_str(), message, "Conformance <c@example.com>")?.commit)
    }
}

#[async_trait]
impl BuilderHarness for Memory {
    fn builder(&self) -> Arc<dyn Builder> {
        Arc::new(self.account.image_builder())
    }
    async fn revision(&self) -> Result<Revision> {
        self.account.push("main", "buildable", "c")
    }
    fn patience(&self) -> Patience {
        Patience::default()
    }
}

#[async_trait]
impl StackHarness for Memory {
    fn stack(&self) -> Arc<dyn Stack> {
        Arc::new(self.account.stacks())
    }
    async fn existing(&self) -> Result<StackName> {
        Ok(StackName::parse("app-blue")?)
    }
    fn change(&self, n: u32) -> StackChange {
        self.changes.fetch_add(1, Ordering::Relaxed);
        StackChange {
            parameters: StackParameters::parse([("DesiredCount", (n + 2).to_string())]).unwrap(),
            template: None,
        }
    }
    fn patience(&self) -> Patience {
        Patience::default()
    }
}

#[async_trait]
impl DeployerHarness for Memory {
    fn deployer(&self) -> Arc<dyn Deployer> {
        Arc::new(self.account.deployer("blue").unwrap())
    }
    fn images(&self) -> (ImageRef, ImageRef) {
        (ImageRef::parse("app:one").unwrap(), ImageRef::parse("app:two").unwrap())
    }
    async fn advance(&self, _rollout: &Rollout) -> Result<()> {
        // Time passes by itself on the paused clock while the check polls.
        Ok(())
    }
    fn patience(&self) -> Patience {
        Patience::default()
    }
}

#[async_trait]
impl DnsHarness for Memory {
    fn dns(&self) -> Arc<dyn DnsSwitch> {
        Arc::new(self.account.dns())
    }
    async fn set_identifiers(&self) -> Result<(SetIdentifier, SetIdentifier)> {
        Ok((SetIdentifier::parse("blue")?, SetIdentifier::parse("green")?))
    }
    fn patience(&self) -> Patience {
        Patience::default().deadline(Duration::from_secs(600))
    }
}

#[async_trait]
impl VerifierHarness for Memory {
    fn verifier(&self) -> Arc<dyn Verifier> {
        Arc::new(self.account.verifier())
    }
    async fn healthy(&self) -> Result<ServiceUrl> {
        Ok(ServiceUrl::parse("http://blue.app.sim/")?)
    }
    fn unreachable(&self) -> ServiceUrl {
        ServiceUrl::parse("http://nobody.app.sim/").unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn memory_source_conforms() {
    conformance::source(&harness()).await;
}

#[tokio::test(start_paused = true)]
async fn memory_builder_conforms() {
    conformance::builder(&harness()).await;
}

#[tokio::test(start_paused = true)]
async fn memory_stack_conforms() {
    let h = harness();
    conformance::stack(&h).await;
    assert!(h.changes.load(Ordering::Relaxed) >= 2);
}

#[tokio::test(start_paused = true)]
async fn memory_deployer_conforms() {
    conformance::deployer(&harness()).await;
}

#[tokio::test(start_paused = true)]
async fn memory_dns_conforms() {
    conformance::dns(&harness()).await;
}

#[tokio::test(start_paused = true)]
async fn memory_verifier_conforms() {
    conformance::verifier(&harness()).await;
}

/// The suite can fail: a source that ignores pushes is caught.
#[tokio::test(start_paused = true)]
#[should_panic(expected = "latest follows a push")]
async fn the_suite_catches_a_stale_source() {
    struct Stale(Memory, std::sync::Mutex<Option<Revision>>);
    #[async_trait]
    impl Source for Stale {
        async fn latest(&self, branch: &BranchName) -> Result<Revision> {
            if let Some(r) = self.1.lock().unwrap().clone() {
                return Ok(r);
            }
            let r = self.0.account.source().latest(branch).await?;
            *self.1.lock().unwrap() = Some(r.clone());
            Ok(r)
        }
    }
    struct StaleHarness(Arc<Stale>);
    #[async_trait]
    impl SourceHarness for StaleHarness {
        fn source(&self) -> Arc<dyn Source> {
            self.0.clone()
        }
        async fn push(&self, branch: &BranchName, message: &str) -> Result<CommitId> {
            SourceHarness::push(&self.0.0, branch, message).await
        }
    }
    conformance::source(&StaleHarness(Arc::new(Stale(harness(), std::sync::Mutex::new(None))))).await;
}

struct Managed {
    account: sendy_cd::memory::Account,
}

#[async_trait]
impl conformance::ManagedDeployerHarness for Managed {
    fn managed(&self) -> Arc<dyn sendy_cd::ManagedDeployer> {
        Arc::new(self.account.managed_deployer("shop").unwrap())
    }
    fn images(&self) -> (ImageRef, ImageRef) {
        (ImageRef::parse("app:one").unwrap(), ImageRef::parse("app:two").unwrap())
    }
    async fn advance(&self, _rollout: &Rollout) -> Result<()> {
        Ok(())
    }
    fn patience(&self) -> Patience {
        Patience::default()
    }
}

#[tokio::test(start_paused = true)]
async fn memory_managed_deployer_conforms() {
    let account = sendy_cd::memory::Account::new();
    account.create_managed_service("shop", sendy_cd::memory::ManagedConfig::default()).unwrap();
    conformance::managed_deployer(&Managed { account }).await;
}
